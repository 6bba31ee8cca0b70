-- Issued credentials: access tokens, refresh tokens, authorization codes and
-- 2012 authorization lifecycles, in shared dicts so every worker agrees.
-- Single use is enforced with dict:add on a "used" marker, which is atomic
-- across workers.
local util = require "emulator.util"

local tokens = ngx.shared.emu_tokens
local codes = ngx.shared.emu_codes

local M = {}

local function put(dict, key, rec, ttl)
  -- Keep records a little past their own expiry so an expired token is
  -- reported as expired, not unknown; 0 = never evicted by time.
  local exptime = ttl and (ttl + 60) or 0
  local ok, err = dict:set(key, util.json_encode(rec), exptime)
  if not ok then error("emulator: shared dict full: " .. tostring(err)) end
end

local function get(dict, key)
  local raw = dict:get(key)
  return raw and util.json_decode(raw) or nil
end

-- The generation bumped by POST /_emulator/tokens/expire: tokens of an
-- older generation are treated as expired.
local function generation()
  return tokens:get("gen") or 0
end

function M.expire_all()
  tokens:incr("gen", 1, 0)
end

-- rec: account, scope, client_id, kind ("identity" | "2012"), companies?,
-- life? (2012 lifecycle id). ttl nil = never expires.
function M.issue_access(rec, ttl, value)
  local tok = value or util.token()
  rec.exp = ttl and (util.now() + ttl) or nil
  rec.gen = generation()
  put(tokens, "a:" .. tok, rec, ttl)
  return tok
end

-- nil, reason ("unknown" | "expired" | "revoked") when the token is unusable.
function M.lookup_access(tok)
  local rec = get(tokens, "a:" .. tok)
  if not rec then return nil, "unknown" end
  if rec.life and tokens:get("l:" .. rec.life) then return nil, "revoked" end
  if rec.gen ~= generation() then return nil, "expired" end
  if rec.exp and rec.exp <= util.now() then return nil, "expired" end
  return rec
end

function M.peek_access(tok)
  return get(tokens, "a:" .. tok)
end

function M.revoke_access(tok)
  tokens:delete("a:" .. tok)
end

function M.issue_refresh(rec, ttl, value)
  local tok = value or util.token()
  rec.exp = ttl and (util.now() + ttl) or nil
  tokens:delete("u:" .. tok) -- a fixed (legacy sample) value is re-armed
  put(tokens, "r:" .. tok, rec, ttl)
  return tok
end

function M.peek_refresh(tok)
  return get(tokens, "r:" .. tok)
end

-- Consumes a refresh token: rec, or nil, "unknown" | "revoked" | "expired".
function M.use_refresh(tok)
  local rec = get(tokens, "r:" .. tok)
  if not rec then return nil, "unknown" end
  if rec.life and tokens:get("l:" .. rec.life) then return nil, "revoked" end
  if rec.exp and rec.exp <= util.now() then return nil, "expired" end
  if not tokens:add("u:" .. tok, true) then return nil, "revoked" end
  return rec
end

function M.revoke_refresh(tok)
  tokens:set("u:" .. tok, true)
end

-- 2012: everything issued under one authorization shares a lifecycle id;
-- revoking it kills them all.
function M.new_lifecycle()
  return util.token()
end

function M.revoke_lifecycle(life)
  tokens:set("l:" .. life, true)
end

function M.issue_code(rec, ttl)
  local code = util.token()
  rec.exp = util.now() + ttl
  put(codes, "c:" .. code, rec, ttl)
  return code
end

-- Consumes a code: rec, or nil, reason.
function M.use_code(code)
  local rec = get(codes, "c:" .. code)
  if not rec then return nil, "unknown" end
  if rec.exp <= util.now() then return nil, "expired" end
  if not codes:add("u:" .. code, true, 3600) then return nil, "used" end
  return rec
end

function M.reset()
  tokens:flush_all()
  tokens:flush_expired()
  codes:flush_all()
  codes:flush_expired()
end

return M
