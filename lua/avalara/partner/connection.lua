--- A partner connection as the token source of a client (`avalara.partner`'s
-- `p:client(id)`; `avalara.connection` still loads it): its access token is
-- used until the API refuses it, then renewed with its single-use refresh
-- token by exactly one holder at a time.
--
-- The refresh protocol, for any store with the `avalara.store` contract:
--
-- 1. take the store's lock on the connection (waiting, yielding in a
--    coroutine, while another coroutine, worker or process holds it; when it
--    is released, the tokens it stored are used: no second refresh);
-- 2. re-read the connection: if its access token is no longer the refused
--    one, another holder already rotated the tokens: use theirs;
-- 3. else refresh, store the new tokens with compare-and-set at once (no
--    hook, no log between the answer and the commit), and only then run the
--    hooks, release the lock and use them. A process killed (kill -9, power
--    loss) in that window leaves the old record with its spent refresh
--    token: the next holder is told `token revoked` and reports
--    `reauthorize`, never a silent failure; the tokens the server issued in
--    the window are never stored anywhere;
-- 4. when the server says the refresh token is revoked or unknown, re-read
--    the store once more (a holder whose lock lapsed may have stored newer
--    tokens) before marking the connection lost: `err.code = "reauthorize"`.
--
-- Tokens never leave the store and this module except as the access token
-- handed to the client for its requests.
--
-- The module knows its partner only through an `account` (made by
-- `avalara.partner`): `store`, `lock_ttl`, `token_url`, `unsaved` (tokens
-- refreshed but not stored yet, by connection id), and the functions `key(id)`, `refresh(client,
-- refresh_token)` (the exchange, with the partner's secret), `revoke(rec)`
-- and `notify(id, stage)` (`on_refresh`).
-- @module avalara.partner.connection
local clock = require "avalara.clock"
local errors = require "avalara.partner.error"

local M = {}

local now = clock.now

local fail, store_failed, unknown = errors.fail, errors.store_failed, errors.unknown

local function lost(id, rec)
  return fail("reauthorize", ("connection %s is no longer authorized (%s): the customer must reconnect "
    .. "(partner:authorize_url, or hscode connect)"):format(id, rec.lost_reason or "its refresh token was refused"),
    { oauth_detail = rec.lost_oauth_code })
end

-- What the client needs of a connection: its access token, never the refresh token.
local function access(rec)
  return { access_token = rec.access_token, token_type = rec.token_type, scope = rec.scope,
    expires_at = rec.expires_at }
end

-- Whether the stored access token may be tried: not the one just refused,
-- not past a known expiry (an unknown expiry: used until refused).
local function usable(rec, stale)
  if type(rec.access_token) ~= "string" or rec.access_token == stale then return false end
  return not (rec.expires_at and rec.expires_at <= now())
end

-- The OAuth error of a refresh that means the refresh token is dead (its
-- `oauth_detail` given first): 2012 `invalid_token` (`token revoked`, or
-- `access_denied`: unknown; not a request without one), Identity
-- `invalid_grant` (used, revoked, expired or unknown).
local function refresh_refused(err)
  return type(err) == "table" and err.kind == "oauth" and err.oauth_detail ~= "refresh_token_missing"
    and (err.code == "invalid_token" or err.code == "invalid_grant")
end

--- A connection record after a grant: the token's values (`tok` is an `avalara.token`).
-- @param tok the core token
-- @tparam[opt] table base the record it replaces (its other fields are kept)
-- @treturn table the record
function M.with_tokens(tok, base)
  local rec = {}
  for k, v in pairs(base or {}) do rec[k] = v end
  rec.access_token, rec.refresh_token = tok:access_token(), tok:refresh_token() or rec.refresh_token
  rec.token_type, rec.scope, rec.expires_at = tok:token_type(), tok:scope() or rec.scope, tok:expires_at()
  rec.status, rec.lost_reason, rec.lost_oauth_code, rec.lost_at = "connected", nil, nil, nil
  return rec
end

-- Stores refreshed tokens before anything uses them. The compare-and-set
-- fails only when the record changed without the lock (a lock that lapsed,
-- a reconnect, a disconnect). If it still holds the refresh token these
-- tokens were rotated from (another holder marked it lost, or changed its
-- metadata), these tokens are the live ones: they replace it. If it holds
-- another authorization (reconnected meanwhile), or is gone (disconnected),
-- these tokens are revoked and not stored. Returns the record to use, or nil, err.
local function save(account, id, key, version, fresh, from)
  local store = account.store
  for _ = 1, 10 do
    local ok, current, have = store:cas(key, version, fresh)
    if ok then return fresh end
    if ok == nil then return store_failed(store, "storing the refreshed tokens of connection " .. id, current) end
    if current == nil or current.refresh_token ~= from then
      account.revoke(fresh)
      if current == nil then return unknown(id) end
      return current
    end
    fresh.created_at, fresh.company_id = current.created_at, current.company_id
    version = have
  end
  return store_failed(store, "storing the refreshed tokens of connection " .. id, "the record keeps changing")
end

-- What `save` did with `fresh`, for the caller: its access, or nil, err.
-- A store that failed keeps `fresh` in `account.unsaved` (stored at the next call).
local function stored(account, id, saved, serr, fresh)
  if not saved and serr.code == "store_failed" then return nil, serr end
  account.unsaved[id] = nil
  if not saved then return nil, serr end
  if saved == fresh then account.notify(id, "stored") end
  if saved.status == "reauthorize" then return lost(id, saved) end
  return access(saved)
end

-- Marks connection `id` lost after its refresh token was refused (`rerr`).
local function refused(account, id, key, rec, rerr)
  local store = account.store
  -- Once more: tokens stored by a holder whose lock lapsed are live ones.
  local again, again_version = store:get(key)
  if again and again.refresh_token ~= rec.refresh_token and again.status ~= "reauthorize" then
    return access(again)
  end
  local reason = "its refresh token was refused: " .. tostring(rerr.message)
  if again then
    again.status, again.lost_at = "reauthorize", clock.time()
    again.lost_reason, again.lost_oauth_code = reason, rerr.oauth_detail
    store:cas(key, again_version, again)
    rec = again
  else
    rec = { lost_reason = reason, lost_oauth_code = rerr.oauth_detail }
  end
  account.notify(id, "lost")
  return lost(id, rec)
end

-- Steps 2 to 4, with the lock held.
local function refresh_locked(account, client, id, key, stale)
  local store = account.store
  local rec, version, err = store:get(key)
  if err then return store_failed(store, "reading connection " .. id, err) end
  if not rec then return unknown(id) end
  if rec.status == "reauthorize" then return lost(id, rec) end
  if usable(rec, stale) then return access(rec) end -- rotated by the holder before us

  local fresh
  local unsaved = account.unsaved[id]
  if not rec.refresh_token then -- a server that issued none: nothing can renew it
    rec.status, rec.lost_at = "reauthorize", clock.time()
    rec.lost_reason = "its access token was refused and the server issued no refresh token"
    store:cas(key, version, rec)
    account.notify(id, "lost")
    return lost(id, rec)
  elseif unsaved and unsaved.from == rec.refresh_token then
    fresh = unsaved.rec -- refreshed earlier in this process, not stored then: store it now
  else
    local started = now()
    local tok, rerr = account.refresh(client, rec.refresh_token)
    if not tok then
      client:observe("POST", account.token_url, nil, started, 1, rerr)
      rerr = errors.detail(rerr, "refresh_token")
      if not refresh_refused(rerr) then return nil, rerr end
      return refused(account, id, key, rec, rerr)
    end
    -- The window: from here to the store's commit in `save`, the old refresh
    -- token is spent and the new one exists only in this process. Nothing
    -- else runs in it (no hook, no log); see the refreshes under concurrency in docs/partner.md.
    fresh = M.with_tokens(tok, rec)
    fresh.refreshed_at = clock.time()
    tok:close()
    account.unsaved[id] = { from = rec.refresh_token, rec = fresh }
    local saved, serr = save(account, id, key, version, fresh, rec.refresh_token)
    -- Committed (or kept for the next call): the hooks may run now.
    client:observe("POST", account.token_url, 200, started, 1)
    account.notify(id, "refreshed")
    return stored(account, id, saved, serr, fresh)
  end
  local saved, serr = save(account, id, key, version, fresh, rec.refresh_token)
  return stored(account, id, saved, serr, fresh)
end

--- The access token record of connection `id` for `client` (the refresh
-- protocol above when `stale`, the token the API just refused, is still the
-- stored one).
-- @tparam table account the partner's side (see the module's comment)
-- @param client the client asking (its transport runs the refresh; `client:observe` tells its
-- `on_request`, `client:pause` waits for the lock)
-- @string id the connection
-- @param[opt] stale the refused access token
-- @return `{access_token, token_type, scope, expires_at}`, or nil, err
function M.token(account, client, id, stale)
  local store, key = account.store, account.key(id)
  local rec, _, err = store:get(key)
  if err then return store_failed(store, "reading connection " .. id, err) end
  if not rec then return unknown(id) end
  if rec.status == "reauthorize" then return lost(id, rec) end
  if usable(rec, stale) then return access(rec) end

  local give_up = now() + account.lock_ttl + 5
  local unlock, lerr = store:lock(key, account.lock_ttl)
  while not unlock do
    if lerr then return store_failed(store, "locking connection " .. id, lerr) end
    client:pause()
    rec, _, err = store:get(key)
    if err then return store_failed(store, "reading connection " .. id, err) end
    if not rec then return unknown(id) end
    if rec.status == "reauthorize" then return lost(id, rec) end
    if usable(rec, stale) then return access(rec) end -- the holder stored its new tokens
    if now() > give_up then
      return fail("refresh_in_progress", "connection " .. id .. " is being refreshed elsewhere and it has not "
        .. "finished in " .. account.lock_ttl .. " s", { kind = "timeout", retryable = true })
    end
    unlock, lerr = store:lock(key, account.lock_ttl)
  end
  local ok, a, b = pcall(refresh_locked, account, client, id, key, stale)
  unlock()
  if not ok then error(a, 0) end
  return a, b
end

-- ------------------------------------------------------------ the source

local Source = {}
Source.__index = Source
Source.__tostring = function(self) return "connection " .. self.id end

--- The token source of connection `id` (the `token_source` option of a client).
-- @tparam table account the partner's side (see the module's comment)
-- @string id
-- @treturn table the source (`source:token(client, stale)`)
function M.source(account, id)
  return setmetatable({ account = account, id = id }, Source)
end

--- The access token for `client` (see `M.token`).
-- @param client
-- @param[opt] stale
function Source:token(client, stale)
  return M.token(self.account, client, self.id, stale)
end

return M
