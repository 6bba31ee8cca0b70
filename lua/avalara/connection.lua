--- A partner connection as the token source of a client (`avalara.partner`'s
-- `p:client(id)`): its access token is used until the API refuses it, then
-- renewed with its single-use refresh token by exactly one holder at a time.
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
-- @module avalara.connection
local core = require "avalara.core"
local clock = require "avalara.clock"

local M = {}

local now = clock.now

--- A partner error (`avalara.error`): kind "oauth" unless given, not retryable unless given.
-- @string code
-- @string message
-- @tparam[opt] table extra more fields (kind, status, oauth_code, error_description, ...)
-- @return nil, err
function M.fail(code, message, extra)
  local t = { kind = "oauth", code = code, message = message, retryable = false }
  for k, v in pairs(extra or {}) do t[k] = v end
  return nil, core.error(t)
end

--- The error of a store that cannot be read or written (kind "transport", code "store_failed").
-- @param store
-- @string what what was being done
-- @param err the store's message
-- @return nil, err
function M.store_failed(store, what, err)
  return M.fail("store_failed", what .. ": " .. tostring(err), { kind = "transport", retryable = true,
    store = tostring(store) })
end

--- The error of an unknown (never made, or disconnected) connection.
-- @string id
-- @return nil, err
function M.unknown(id)
  return M.fail("connection_unknown", "no connection '" .. tostring(id)
    .. "' (never made, or disconnected): connect it first")
end

--- An error of a token endpoint made precise: `err.code` says what happened
-- (seed 003's table: `invalid_client_id`, `invalid_client_secret`,
-- `code_missing`, `code_invalid`, `refresh_token_missing`, or the OAuth code
-- itself), `err.oauth_code` keeps the server's `error`.
-- @param err an `avalara.error` (other values are returned as they are)
-- @string grant the exchange: "authorization_code", "refresh_token", "generate_token", "revoke"
-- @return err
function M.precise(err, grant)
  if type(err) ~= "table" or err.kind ~= "oauth" or err.oauth_code then return err end
  local code, d = err.code, (err.error_description or err.message or ""):lower()
  local precise = code
  if code == "invalid_request" and d:find("client_id", 1, true) then precise = "invalid_client_id"
  elseif code == "invalid_request" and d:find("client_secret", 1, true) then precise = "invalid_client_secret"
  elseif code == "invalid_grant" and d:find("accessgrantid", 1, true) then precise = "code_missing"
  elseif code == "invalid_token" and d:find("refreshtoken", 1, true) then precise = "refresh_token_missing"
  elseif code == "invalid_grant" and grant == "authorization_code" then precise = "code_invalid"
  end
  err.oauth_code, err.code = code, precise
  return err
end

local function lost(id, rec)
  return M.fail("reauthorize", ("connection %s is no longer authorized (%s): the customer must reconnect "
    .. "(partner:authorize_url, or hscode connect)"):format(id, rec.lost_reason or "its refresh token was refused"),
    { oauth_code = rec.lost_oauth_code })
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

-- The OAuth error of a refresh that means the refresh token is dead
-- (made precise first): 2012 `invalid_token` (`token revoked`, or
-- `access_denied`: unknown), Identity `invalid_grant` (used, revoked,
-- expired or unknown).
local function refresh_refused(err)
  return type(err) == "table" and err.kind == "oauth"
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
local function save(p, id, key, version, fresh, from)
  local store = p.store
  for _ = 1, 10 do
    local ok, current, have = store:cas(key, version, fresh)
    if ok then return fresh end
    if ok == nil then return M.store_failed(store, "storing the refreshed tokens of connection " .. id, current) end
    if current == nil or current.refresh_token ~= from then
      p:_revoke(fresh)
      if current == nil then return M.unknown(id) end
      return current
    end
    fresh.created_at, fresh.company_id = current.created_at, current.company_id
    version = have
  end
  return M.store_failed(store, "storing the refreshed tokens of connection " .. id, "the record keeps changing")
end

-- What `save` did with `fresh`, for the caller: its access, or nil, err.
-- A store that failed keeps `fresh` in `p._unsaved` (stored at the next call).
local function stored(p, id, saved, serr, fresh)
  if not saved and serr.code == "store_failed" then return nil, serr end
  p._unsaved[id] = nil
  if not saved then return nil, serr end
  if saved == fresh then p:_hook(id, "stored") end
  if saved.status == "reauthorize" then return lost(id, saved) end
  return access(saved)
end

-- Steps 2 to 4, with the lock held.
local function refresh_locked(p, client, id, key, stale)
  local store = p.store
  local rec, version, err = store:get(key)
  if err then return M.store_failed(store, "reading connection " .. id, err) end
  if not rec then return M.unknown(id) end
  if rec.status == "reauthorize" then return lost(id, rec) end
  if usable(rec, stale) then return access(rec) end -- rotated by the holder before us

  local fresh
  local unsaved = p._unsaved[id]
  if not rec.refresh_token then -- a server that issued none: nothing can renew it
    rec.status, rec.lost_at = "reauthorize", clock.time()
    rec.lost_reason = "its access token was refused and the server issued no refresh token"
    store:cas(key, version, rec)
    p:_hook(id, "lost")
    return lost(id, rec)
  elseif unsaved and unsaved.from == rec.refresh_token then
    fresh = unsaved.rec -- refreshed earlier in this process, not stored then: store it now
  else
    local started = now()
    local tok, rerr = client:exchange("refresh_token", { token_url = p.urls.token, client_id = p.client_id,
      client_secret = p:_secret(), refresh_token = rec.refresh_token, auth_method = p.auth_method })
    if tok then
      -- The window: from here to the store's commit in `save`, the old refresh
      -- token is spent and the new one exists only in this process. Nothing
      -- else runs in it (no hook, no log); see "Crashes: the refresh window" in docs/partner.md.
      fresh = M.with_tokens(tok, rec)
      fresh.refreshed_at = clock.time()
      tok:close()
      p._unsaved[id] = { from = rec.refresh_token, rec = fresh }
      local saved, serr = save(p, id, key, version, fresh, rec.refresh_token)
      -- Committed (or kept for the next call): the hooks may run now.
      client:_hook("POST", p.urls.token, 200, started, 1)
      p:_hook(id, "refreshed")
      return stored(p, id, saved, serr, fresh)
    end
    client:_hook("POST", p.urls.token, nil, started, 1, rerr)
    rerr = M.precise(rerr, "refresh_token")
    if not refresh_refused(rerr) then return nil, rerr end
    -- Once more: tokens stored by a holder whose lock lapsed are live ones.
    local again, again_version = store:get(key)
    if again and again.refresh_token ~= rec.refresh_token and again.status ~= "reauthorize" then
      return access(again)
    end
    if again then
      again.status, again.lost_at = "reauthorize", clock.time()
      again.lost_reason = "its refresh token was refused: " .. tostring(rerr.message)
      again.lost_oauth_code = rerr.code
      store:cas(key, again_version, again)
      rec = again
    else
      rec = { lost_reason = "its refresh token was refused: " .. tostring(rerr.message), lost_oauth_code = rerr.code }
    end
    p:_hook(id, "lost")
    return lost(id, rec)
  end
  local saved, serr = save(p, id, key, version, fresh, rec.refresh_token)
  return stored(p, id, saved, serr, fresh)
end

--- The access token record of connection `id` for `client` (the refresh
-- protocol above when `stale`, the token the API just refused, is still the
-- stored one).
-- @param p the partner (`avalara.partner`)
-- @param client the `avalara` client asking (its transport runs the refresh)
-- @string id the connection
-- @param[opt] stale the refused access token
-- @return `{access_token, token_type, scope, expires_at}`, or nil, err
function M.token(p, client, id, stale)
  local store, key = p.store, p:_key(id)
  local rec, _, err = store:get(key)
  if err then return M.store_failed(store, "reading connection " .. id, err) end
  if not rec then return M.unknown(id) end
  if rec.status == "reauthorize" then return lost(id, rec) end
  if usable(rec, stale) then return access(rec) end

  local give_up = now() + p.lock_ttl + 5
  local unlock, lerr = store:lock(key, p.lock_ttl)
  while not unlock do
    if lerr then return M.store_failed(store, "locking connection " .. id, lerr) end
    client:_yield()
    rec, _, err = store:get(key)
    if err then return M.store_failed(store, "reading connection " .. id, err) end
    if not rec then return M.unknown(id) end
    if rec.status == "reauthorize" then return lost(id, rec) end
    if usable(rec, stale) then return access(rec) end -- the holder stored its new tokens
    if now() > give_up then
      return M.fail("refresh_in_progress", "connection " .. id .. " is being refreshed elsewhere and it has not "
        .. "finished in " .. p.lock_ttl .. " s", { kind = "timeout", retryable = true })
    end
    unlock, lerr = store:lock(key, p.lock_ttl)
  end
  local ok, a, b = pcall(refresh_locked, p, client, id, key, stale)
  unlock()
  if not ok then error(a, 0) end
  return a, b
end

-- ------------------------------------------------------------ the source

local Source = {}
Source.__index = Source
Source.__tostring = function(self) return "connection " .. self.id end

--- The token source of connection `id` (for `avalara.new{token_source = ...}`).
-- @param p the partner
-- @string id
-- @treturn table the source (`source:token(client, stale)`)
function M.source(p, id)
  return setmetatable({ partner = p, id = id }, Source)
end

--- The access token for `client` (see `M.token`).
-- @param client
-- @param[opt] stale
function Source:token(client, stale)
  return M.token(self.partner, client, self.id, stale)
end

return M
