-- Bearer authentication, rate limiting and the sandbox quota of the API
-- routes (classification and definitions), with AvaTax's error codes.
local util = require "emulator.util"
local conf = require "emulator.conf"
local tokens = require "emulator.tokens"
local errors = require "emulator.errors"

local counters_dict = ngx.shared.emu_counters

local M = {}

local function unauthorized(code, args, challenge)
  return errors.send(401, code, {
    args = args,
    target = "HttpRequestHeaders",
    headers = { ["WWW-Authenticate"] = challenge },
  })
end

-- The token record of the request, or nil after sending 401/403. Both
-- "Bearer" and the 2012 service's "avalara" scheme are accepted; the token
-- must carry one of `scopes` (default: the config's api_scopes).
function M.require_token(scopes)
  local header = ngx.var.http_authorization
  local scheme, tok = (header or ""):match("^%s*(%a+)%s+(%S+)%s*$")
  scheme = scheme and scheme:lower()
  if not tok or (scheme ~= "bearer" and scheme ~= "avalara") then
    unauthorized("AuthenticationIncomplete", nil, 'Bearer realm="avalara"')
    return nil
  end
  local rec, why = tokens.lookup_access(tok)
  if not rec then
    unauthorized("BearerTokenInvalid", { why }, 'Bearer realm="avalara", error="invalid_token"')
    return nil
  end
  scopes = scopes or conf.get().api_scopes
  for s in (rec.scope or ""):gmatch("%S+") do
    if conf.contains(scopes, s) then return rec end
  end
  errors.send(403, "AuthorizationException", { target = "HttpRequestHeaders" })
  return nil
end

-- Companies the token may use: the 2012 authorization's company, or every
-- company of the account.
function M.can_use_company(rec, company_id)
  local companies = rec.companies
  if not companies then
    local acct = conf.account(rec.account)
    companies = acct and acct.companies or {}
  end
  for _, c in ipairs(companies) do
    if tonumber(c) == company_id then return true end
  end
  return false
end

-- The token record when it may use the company of the route (its first
-- capture, set as ctx.company), within the rate limit; else nil (sent).
function M.company(ctx, scopes)
  local rec = M.require_token(scopes)
  if not rec then return nil end
  ctx.company = tonumber(ctx.captures[1])
  if not M.can_use_company(rec, ctx.company) then
    errors.send(403, "AuthorizationException", { target = "HttpRequest" })
    return nil
  end
  if not M.rate_limit(rec) then return nil end
  return rec
end

-- Fixed window per account; true, or false after sending 429 with Retry-After.
function M.rate_limit(rec)
  local rl = conf.get().rate_limit
  if type(rl) ~= "table" then return true end
  local now = util.now()
  local window = math.floor(now / rl.window)
  local key = "ratelimit:" .. rec.account .. ":" .. window
  local n = counters_dict:incr(key, 1, 0, math.ceil(rl.window) + 1)
  if n and n > rl.requests then
    local retry = math.max(1, math.ceil((window + 1) * rl.window - now))
    errors.send(429, "RateLimitExceeded", {
      args = { "Too many requests: the limit is " .. rl.requests .. " per " .. rl.window .. " seconds." },
      target = "HttpRequest", headers = { ["Retry-After"] = tostring(retry) } })
    return false
  end
  return true
end

-- Takes `n` units of the sandbox quota at once (classification creates,
-- or the item and country pairs of an HS classification), all or none;
-- true, or false after sending 429 RequestLimitExceeded (no Retry-After:
-- waiting does not help), nothing taken.
function M.quota(rec, n)
  n = n or 1
  local quota = conf.quota(rec.account)
  if not quota or n <= 0 then return true end
  local used = counters_dict:incr("quota:" .. rec.account, n, 0)
  if used > quota then
    counters_dict:incr("quota:" .. rec.account, -n)
    errors.send(429, "RequestLimitExceeded", { args = { quota }, target = "HttpRequest" })
    return false
  end
  return true
end

-- Gives back a unit of quota taken by M.quota (a create that turned out
-- to replace an existing classification).
function M.refund(rec)
  if conf.quota(rec.account) then counters_dict:incr("quota:" .. rec.account, -1) end
end

return M
