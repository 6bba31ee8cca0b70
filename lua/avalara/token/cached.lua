--- The cache behind a token source (as golang.org/x/oauth2's
-- `ReuseTokenSource`): the access token kept in a store (shared by the
-- processes using it) and renewed within `leeway` seconds of expiry, one
-- renewal at a time (the store's lock; other coroutines and processes wait
-- for it and share its result).
--
--    local cache = cached.new(source, { store = store, key = key, leeway = 300, lease = 90, patience = 60,
--      wait = function() ... end, warn = function(what, message) ... end, on_token = function(info) ... end })
--    local tok, err = cache:token()       -- an avalara.token.token Token
--
-- For non-blocking callers (`avalara.async`) the steps are public too:
-- `peek` (a valid token without any request), `lock`, `stored`, the source's
-- `grant`, then `keep`.
-- @module avalara.token.cached
local clock = require "avalara.clock"
local token = require "avalara.token.token"
local source_mod = require "avalara.token.source"

local M = {}

local now = clock.now

--- A cached token source.
-- @type Cached
local Cached = {}
Cached.__index = Cached
M.Cached = Cached

--- Makes the cache of `source` (`source:fetch()` -> record | nil, err; `source:grant()`).
-- @param source
-- @tparam table opts `{store, key, leeway, lease, patience, wait, warn, on_token, account_id}`:
-- `lease` the lock's lifetime, `patience` how long to wait for another renewal, `wait()` one
-- short wait, `warn(what, message)` a warning once per `what`, `on_token(info)` after a token is
-- obtained (protected by the caller)
-- @treturn Cached
function M.new(source, opts)
  return setmetatable({ source = source, store = opts.store, key = opts.key, leeway = opts.leeway,
    lease = opts.lease, wait = opts.wait, warn = opts.warn, on_token = opts.on_token,
    account_id = opts.account_id, patience_s = opts.patience }, Cached)
end

--- The record of a core token (closes it).
M.record = source_mod.record

-- A token record as a client writes it: a store gives back what any process
-- (or anyone who can write the file, the Redis key, the dict) put there, so
-- its fields are checked before use: an access token of visible ASCII (it
-- goes into a header line: a CR or LF would add lines of its own), and
-- numbers where numbers belong.
local function well_formed(rec)
  return type(rec.access_token) == "string" and rec.access_token:find("^[\33-\126]+$") ~= nil
    and (rec.token_type == nil or type(rec.token_type) == "string")
    and (rec.scope == nil or type(rec.scope) == "string")
    and (rec.expires_at == nil or (type(rec.expires_at) == "number" and rec.expires_at == rec.expires_at))
    and (rec.obtained_at == nil or type(rec.obtained_at) == "number")
end

-- A store's failure that is not an outage: a misconfigured store (`avalara.store.redis`: a wrong
-- password, an ACL user without a command, ...; kind "store", not retryable) fails the call
-- rather than letting this process fetch tokens of its own without a word.
local function misconfigured(err)
  return type(err) == "table" and err.kind == "store" and not err.retryable
end

-- Until when a well-formed record is valid: its expiry less the leeway (math.huge without one).
local function valid_until(self, rec)
  if rec.expires_at == nil then return math.huge end
  -- A lifetime shorter than the leeway would renew on every call: use half of it then.
  local leeway = self.leeway
  if rec.obtained_at and rec.expires_at - rec.obtained_at < 2 * leeway then
    leeway = (rec.expires_at - rec.obtained_at) / 2
  end
  return rec.expires_at - leeway
end

--- Whether a token record is well formed and valid for `leeway` seconds more (and is not `stale`);
-- a malformed one is said once to `warn`.
-- @param rec
-- @param[opt] stale
-- @treturn boolean
function Cached:valid(rec, stale)
  if rec == nil then return false end
  -- the record checked last is not checked again (the held one, on every call: a string
  -- pattern per call otherwise; a record is never changed in place, a new one replaces it)
  if rec ~= self.formed and (type(rec) ~= "table" or not well_formed(rec)) then
    -- treated as no token (a fresh one is fetched and stored over it), said once
    self.warn("bad_token", "the token record in " .. tostring(self.store)
      .. " is not a valid token (a control character or space in the token, or a field of the wrong type):"
      .. " ignored, a new token is fetched")
    return false
  end
  self.formed = rec
  if stale ~= nil and rec.access_token == stale then return false end
  return valid_until(self, rec) > now()
end

--- Wraps a token record and keeps it as the one used next.
-- @tparam table rec
-- @return a Token
function Cached:hold(rec)
  local tok = token.wrap(rec)
  self.held = tok
  -- checked once here, not on every call (the access token's pattern costs ~300 instructions a byte)
  self.held_until = type(rec) == "table" and well_formed(rec) and valid_until(self, rec) or nil
  return tok
end

--- Seconds a caller waits for another process's renewal before going on without its lock.
-- @treturn number
function Cached:patience() return self.patience_s end

--- A valid token without any request: the one held, else the store's (or
-- the one kept for this process when the store could not keep it).
-- @param[opt] stale an access token the API refused
-- @return a Token; or nil, err (a misconfigured store); or nil, nil, renewal (whether a token was
-- there before: the next one is a renewal)
function Cached:peek(stale)
  -- The token last seen, while valid: no store round trip (nor decoding) on
  -- every call. Another process's renewal does not make it invalid; a 401
  -- names it `stale`, which goes to the store.
  local held, held_until = self.held, self.held_until
  if held and stale == nil and held_until and held_until > now() then return held end
  local rec, _, gerr = self.store:get(self.key)
  if misconfigured(gerr) then return nil, gerr end
  rec = rec or self.kept
  if self:valid(rec, stale) then return self:hold(rec) end
  return nil, nil, rec ~= nil or self.had_token == true
end

--- The valid token in the store now (or kept for this process), or nil.
-- @param[opt] stale
-- @return a Token or nil
function Cached:stored(stale)
  local rec = self.store:get(self.key) or self.kept
  if self:valid(rec, stale) then return self:hold(rec) end
  return nil
end

--- Takes the store's lock for a renewal.
-- @return unlock (a function); or nil, err (a misconfigured store: fail; an outage: go on
-- without the lock); or nil (another process holds it)
function Cached:lock()
  return self.store:lock(self.key, self.lease)
end

--- The source's grant, prepared and not sent (for a driver that runs it: `avalara.async`), and its URL.
-- @return a prepared exchange, the token URL
function Cached:grant()
  return self.source:grant()
end

--- Keeps a token record just obtained (in the store, else for this process),
-- releases the lock, tells `on_token` and holds it.
-- @tparam table fresh the record
-- @bool renewed whether it replaces one
-- @param[opt] unlock
-- @return a Token, or nil, err (a misconfigured store)
function Cached:keep(fresh, renewed, unlock)
  local store = self.store
  -- stored before unlocking: a waiter that takes the lock next must find it
  local ttl = fresh.expires_at and math.max(1, math.ceil(fresh.expires_at - now())) or nil
  local stored, why = store:set(self.key, fresh, ttl)
  self.kept = nil
  if stored == nil and misconfigured(why) then
    if unlock then unlock() end
    return nil, why
  end
  if stored == nil and why ~= nil then
    self.kept = fresh
    self.warn("store", "cannot keep the token in " .. tostring(store) .. ": " .. tostring(why)
      .. " (it is used for this process only)")
  end
  if unlock then unlock() end
  self.had_token = true
  if self.on_token then
    self.on_token { token_type = fresh.token_type, scope = fresh.scope, expires_at = fresh.expires_at,
      expires_in = fresh.expires_at and fresh.expires_at - now() or nil, renewed = renewed,
      account_id = self.account_id }
  end
  return self:hold(fresh)
end

--- The access token: cached, renewed within `leeway` seconds of expiry. Only
-- one renewal runs at a time: other coroutines asking meanwhile wait for it
-- (`wait`) and share its result.
-- @param[opt] stale an access token known to be rejected (renew unless the store has another)
-- @return a Token, or nil, err
function Cached:token(stale)
  -- the held token while valid (peek's first case, one call less on every API call)
  local held, held_until = self.held, self.held_until
  if held and stale == nil and held_until and held_until > now() then return held end
  local tok, perr = self:peek(stale)
  if tok then return tok end
  if perr then return nil, perr end
  local unlock, lerr = self:lock()
  if misconfigured(lerr) then return nil, lerr end
  local give_up = now() + self.patience_s
  -- a store that cannot lock (an outage: nil, err) is not waited for: go on without its lock
  while not unlock and lerr == nil do
    self.wait()
    tok = self:stored(stale)
    if tok then return tok end
    unlock, lerr = self:lock()
    if misconfigured(lerr) then return nil, lerr end
    if not unlock and now() > give_up then break end -- a lost lock: go on without it
  end
  local rec = self.store:get(self.key) or self.kept
  if self:valid(rec, stale) then
    if unlock then unlock() end
    return self:hold(rec)
  end
  local renewed = rec ~= nil or self.had_token == true
  local ok, fresh, err = pcall(self.source.fetch, self.source)
  if not (ok and fresh) then
    if unlock then unlock() end
    if not ok then error(fresh, 0) end
    return nil, err
  end
  return self:keep(fresh, renewed, unlock)
end

--- Whether `err` is a misconfigured store's error (kind "store", not retryable): it fails the
-- call instead of letting the process go on alone.
-- @param err
-- @treturn boolean
M.misconfigured = misconfigured

return M
