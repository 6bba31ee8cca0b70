--- OpenID Connect discovery of an Identity issuer (OpenID Connect Discovery 1.0, section 4): its
-- `/.well-known/openid-configuration` document, cached per issuer for the document's lifetime, and
-- the endpoints a client takes from it the way Avalara's SDKs do (docs/api-contracts.md section 10:
-- TS `runtime.ts` reads `token_endpoint` and `device_authorization_endpoint` and falls back to the
-- issuer's `/connect/token` and `/connect/deviceauthorization` when the document cannot be had).
--
--    local discovery = require "avalara.token.discovery"
--    local doc, err = discovery.discover("https://identity.avalara.com")
--    print(doc.token_endpoint)   --> https://identity.avalara.com/connect/token
--
-- What `avalara.discover` is; `avalara.new{ issuer = ... }` uses `endpoints`.
-- @module avalara.token.discovery
local clock = require "avalara.clock"
local core = require "avalara.core"
local errors = require "avalara.error"

local M = {}

--- Where the document is, under the issuer.
M.PATH = "/.well-known/openid-configuration"

--- Seconds a document is kept when its answer names no lifetime (no `Cache-Control: max-age`;
-- IdentityServer sends none by default): an hour, as long as an Identity access token lives.
M.DEFAULT_MAX_AGE = 3600

--- The endpoints `endpoints` falls back to, under the issuer (Identity's `/connect/*` layout).
M.FALLBACK = { token_endpoint = "/connect/token", revocation_endpoint = "/connect/revocation",
  device_authorization_endpoint = "/connect/deviceauthorization" }

-- issuer (without trailing slashes) -> {doc, expires_at}
local cache = {}

local function bare(url) return (url:gsub("/+$", "")) end

local function copy(t)
  local out = {}
  for k, v in pairs(t) do out[k] = v end
  return out
end

-- The lifetime an answer's Cache-Control gives: max-age seconds, 0 for
-- no-store or no-cache, else the default.
local function lifetime(headers)
  local cc = type(headers) == "table" and headers["cache-control"]
  if type(cc) ~= "string" then return M.DEFAULT_MAX_AGE end
  cc = cc:lower()
  if cc:find("no%-store") or cc:find("no%-cache") then return 0 end
  local age = tonumber(cc:match("max%-age%s*=%s*\"?(%d+)"))
  return age or M.DEFAULT_MAX_AGE
end

local function bad(issuer, why)
  return nil, errors.new { kind = "parse", message = "the discovery document of " .. issuer .. " " .. why }
end

local function checked_issuer(where, issuer)
  if type(issuer) ~= "string" or not issuer:match("^https?://[^/]") then
    errors.raise(where, "'issuer' must be an http(s) URL (got " .. tostring(issuer) .. ")", 2)
  end
  if issuer:find("[%z\1-\32\127?#]") then
    errors.raise(where, "'issuer' must not contain spaces, control characters, a query or a fragment", 2)
  end
  return bare(issuer)
end

--- The issuer's discovery document (a table of its keys), from the cache while it is fresh, else
-- fetched once (no retries): `GET <issuer>/.well-known/openid-configuration`. Kept for the answer's
-- `Cache-Control: max-age` (none kept for `no-store` or `no-cache`), else `DEFAULT_MAX_AGE` seconds.
-- The document must name this very issuer (OpenID Connect Discovery 4.3) and a `token_endpoint`.
-- @string issuer the issuer URL (`https://identity.avalara.com`); trailing slashes do not count
-- @tparam[opt] table opts transport options (`timeout`, `cafile`, `transport`, ...), and `exchange`
-- (a function of a `core.request` table answering `status, body, headers` or `nil, err`: how a client
-- sends it), `where` (the function named by a wrong argument)
-- @treturn table a copy of the document, or nil, err (the request's error; kind `parse` for a body
-- that is not such a document)
function M.discover(issuer, opts)
  opts = opts or {}
  if type(opts) ~= "table" then errors.raise("avalara.discover", "'opts' must be a table") end
  local key = checked_issuer(opts.where or "avalara.discover", issuer)
  local hit = cache[key]
  if hit and clock.now() < hit.expires_at then return copy(hit.doc) end
  local args = { method = "GET", url = key .. M.PATH }
  for k, v in pairs(opts) do
    if k ~= "exchange" and k ~= "where" then args[k] = v end
  end
  local status, doc, headers
  if opts.exchange then
    status, doc, headers = opts.exchange(args)
  else
    status, doc, headers = core.request(args)
  end
  if status == nil then return nil, doc end
  if type(doc) ~= "table" then return bad(key, "is not a JSON object") end
  if type(doc.issuer) ~= "string" then return bad(key, "has no issuer") end
  if bare(doc.issuer) ~= key then
    return bad(key, "names another issuer (" .. tostring(doc.issuer) .. ")")
  end
  if type(doc.token_endpoint) ~= "string" or not doc.token_endpoint:match("^https?://") then
    return bad(key, "has no token_endpoint")
  end
  local age = lifetime(headers)
  if age > 0 then cache[key] = { doc = doc, expires_at = clock.now() + age } else cache[key] = nil end
  return copy(doc)
end

--- The Identity endpoints of an issuer, as Avalara's SDKs find them: `token_endpoint`,
-- `revocation_endpoint` and `device_authorization_endpoint` from the discovery document; any the
-- document lacks, or all of them when it cannot be had, are the issuer's `/connect/*` (`FALLBACK`).
-- @string issuer
-- @tparam[opt] table opts as for `discover`
-- @treturn table `{token_endpoint, revocation_endpoint, device_authorization_endpoint}`
-- @return the discovery's error when the fallbacks were used (for a warning), else nil
function M.endpoints(issuer, opts)
  local key = checked_issuer(opts and opts.where or "avalara.discover", issuer)
  local doc, err = M.discover(key, opts)
  local out = {}
  for name, path in pairs(M.FALLBACK) do
    local v = doc and doc[name]
    out[name] = type(v) == "string" and v:match("^https?://") and v or key .. path
  end
  return out, err
end

--- The endpoints a token URL implies without discovery: the URL itself and, for Identity's
-- `.../connect/token`, its `/connect/revocation` and `/connect/deviceauthorization`.
-- @string token_url
-- @treturn table `{token_endpoint, revocation_endpoint?, device_authorization_endpoint?}`
function M.derived(token_url)
  local out = { token_endpoint = token_url }
  local base = type(token_url) == "string" and token_url:match("^(.*)/connect/token$")
  if base then
    out.revocation_endpoint = base .. M.FALLBACK.revocation_endpoint
    out.device_authorization_endpoint = base .. M.FALLBACK.device_authorization_endpoint
  end
  return out
end

--- Forgets the cached documents (of one issuer, or all).
-- @string[opt] issuer
function M.clear(issuer)
  if issuer == nil then cache = {} else cache[bare(issuer)] = nil end
end

return M
