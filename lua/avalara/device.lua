--- Signing in at a terminal: the device authorization grant (RFC 8628), as
-- Avalara Identity publishes it (`/connect/deviceauthorization`). The person
-- opens a URL on any device, enters (or sees) a short code and approves; the
-- program polls the token endpoint meanwhile. No license key is typed,
-- stored or shown in `ps`.
--
--    local device = require "avalara.device"
--    local login = assert(device.start{ issuer = "https://identity.avalara.com",
--                                       client_id = "my-app", scope = "hs-code-classification" })
--    print("Open " .. login.verification_uri .. " and enter " .. login.user_code)
--    local token, err = login:wait{ timeout = 300 }
--
-- The device code stays in the C core's `avalara.device` object (docs/core.md);
-- the login holds that object and reads time through `avalara.clock`.
-- @module avalara.device
local core = require "avalara.core"
local clock = require "avalara.clock"
local discovery = require "avalara.token.discovery"
local errors = require "avalara.error"
local options = require "avalara.options"
local retry = require "avalara.retry"
local transport = require "avalara.transport"

local M = {}

local START = { "url", "issuer", "client_id", "client_secret", "scope", "token_url", "revocation_url",
  "auth_method", "sleep" }
for _, k in ipairs(transport.KEYS) do START[#START + 1] = k end

--- A login under way: `user_code`, `verification_uri`, `verification_uri_complete` (nil when the server
-- sent none), `expires_at` (epoch seconds, `avalara.clock`), `interval` (seconds between polls; it grows
-- by 5 s when the server says `slow_down`).
-- @type Login
local Login = {}
Login.__index = Login

-- Per login: {device, next_poll, sleep, token, err}. Kept here, not in the
-- login table, so that no field of it is a secret's holder or settable.
local state = setmetatable({}, { __mode = "k" })

-- The endpoints of an issuer from its discovery document (`avalara.token.discovery`:
-- `<issuer>/.well-known/openid-configuration`, cached for its lifetime), as
-- Avalara's SDKs find them: {device, token, revocation} or nil, err.
local function discover(issuer, topts)
  local opts = { where = "avalara.device.start" }
  for k, v in pairs(topts) do opts[k] = v end
  local doc, err = discovery.discover(issuer, opts)
  if not doc then return nil, err end
  if type(doc.device_authorization_endpoint) ~= "string" then
    return nil, errors.new { kind = "parse",
      message = "the discovery document of " .. issuer .. " names no device_authorization_endpoint" }
  end
  local function url(v) return type(v) == "string" and v or nil end
  return { device = doc.device_authorization_endpoint, token = url(doc.token_endpoint),
    revocation = url(doc.revocation_endpoint) }
end

local function check(cond, message)
  if not cond then errors.raise("avalara.device.start", message, 2) end
end

local function optional_string(opts, name)
  check(opts[name] == nil or type(opts[name]) == "string", "'" .. name .. "' must be a string")
end

--- Starts a login: asks the device authorization endpoint (`url`, or the one `issuer`'s discovery
-- document names) for a user code.
-- @tparam table opts `url` or `issuer` (one of them), `client_id`, `client_secret` (none for a public
-- client), `scope`, `token_url` and `revocation_url` (default: the issuer's, else next to `url`),
-- `auth_method` (`"post"` or `"basic"`), `sleep(seconds)` (what `wait` sleeps with), and the transport
-- options (`timeout`, `cafile`, `allow_http`, ...)
-- @treturn Login|nil the login, or nil and an error
-- @treturn[2] table the error (docs/errors.md): kind `oauth` (`invalid_client`, `invalid_scope`, ...),
-- `transport`, `http`, `parse`
function M.start(opts)
  check(type(opts) == "table", "options must be a table (got " .. type(opts) .. ")")
  options.check_known("avalara.device.start", opts, START, 2)
  check((opts.url == nil) ~= (opts.issuer == nil), "give 'url' or 'issuer' (one of them)")
  for _, k in ipairs({ "url", "issuer", "client_secret", "scope", "token_url", "revocation_url", "auth_method" }) do
    optional_string(opts, k)
  end
  check(type(opts.client_id) == "string" and opts.client_id ~= "", "'client_id' must be a non-empty string")
  check(opts.sleep == nil or options.is_callable(opts.sleep), "'sleep' must be a function")
  local topts, args = {}, {}
  for _, k in ipairs(transport.KEYS) do topts[k] = opts[k] end
  for k, v in pairs(topts) do args[k] = v end
  for _, k in ipairs({ "url", "client_id", "client_secret", "scope", "token_url", "revocation_url", "auth_method" }) do
    args[k] = opts[k]
  end
  if opts.issuer then
    check(opts.issuer:match("^https?://[^/%s]+"), "'issuer' must be an http(s) URL")
    local ep, err = discover(opts.issuer, topts)
    if not ep then return nil, err end
    args.url = ep.device
    args.token_url = args.token_url or ep.token
    args.revocation_url = args.revocation_url or ep.revocation
  end
  local ok, d, err = pcall(core.device_authorization, args)
  if not ok then
    errors.rethrow_interrupt(d)
    errors.raise("avalara.device.start", (tostring(d):gsub("^device_authorization: ", "")))
  end
  if not d then return nil, err end
  local now = clock.now()
  local interval = math.max(d.interval, 1) -- a server's 0 would have us spin
  local login = setmetatable({ user_code = d.user_code, verification_uri = d.verification_uri,
    verification_uri_complete = d.verification_uri_complete, expires_at = now + d.expires_in,
    interval = interval }, Login)
  state[login] = { device = d, next_poll = now + interval, sleep = opts.sleep or retry.sleep }
  return login
end

local function get(self, where)
  local s = state[self]
  if not s then errors.raise(where, "not a login (call it as login:" .. where:match("[^:]+$") .. "())", 2) end
  if s.closed then errors.raise(where, "the login is closed", 2) end
  return s
end

--- Polls the token endpoint once when the interval has passed since the last poll; never sleeps. For
-- event loops: call it every so often until it gives a token or an error.
-- @treturn avalara.token|nil the token (the same one on every later call)
-- @treturn[2] string|table `"pending"` (not yet: poll again later), or the error: kind `oauth` with
-- `code` `access_denied` or `expired_token` (the login is over), kind `transport`/`http` (retryable:
-- poll again later)
function Login:poll()
  local s = get(self, "login:poll")
  if s.token then return s.token end
  if s.err then return nil, s.err end
  local now = clock.now()
  if now >= self.expires_at then
    s.err = errors.new { kind = "oauth", code = "expired_token",
      message = "the code " .. self.user_code .. " expired before it was approved" }
    s.device:close()
    return nil, s.err
  end
  if now < s.next_poll then return nil, "pending" end
  local token, err = s.device:poll()
  self.interval = math.max(s.device.interval, 1)
  s.next_poll = clock.now() + self.interval
  if token then
    s.token = token
    return token
  end
  if err.code == "authorization_pending" or err.code == "slow_down" then return nil, "pending" end
  if err.retryable then
    -- RFC 8628 3.5: back off after a failed connection
    s.next_poll = clock.now() + math.min(self.interval * 2, 60)
  else
    s.err = err
  end
  return nil, err
end

--- Polls until the user approves or denies, the code expires or `timeout` seconds pass, sleeping
-- between polls (the `sleep` option of `start`; `avalara.clock` measures the time).
-- @tparam[opt] table opts `timeout` (seconds; default: until the code expires)
-- @treturn avalara.token|nil the token
-- @treturn[2] table the error: as `poll`'s, or kind `timeout` when `timeout` passed first
function Login:wait(opts)
  local s = get(self, "login:wait")
  opts = opts or {}
  if type(opts) ~= "table" then errors.raise("login:wait", "options must be a table") end
  options.check_known("login:wait", opts, { "timeout" }, 2)
  if opts.timeout ~= nil and (type(opts.timeout) ~= "number" or opts.timeout < 0) then
    errors.raise("login:wait", "'timeout' must be a number >= 0")
  end
  local deadline = math.min(opts.timeout and clock.now() + opts.timeout or math.huge, self.expires_at)
  while true do
    local token, err = self:poll()
    if token then return token end
    if err ~= "pending" and not err.retryable then return nil, err end
    local now = clock.now()
    if now >= deadline and deadline < self.expires_at then
      return nil, errors.new { kind = "timeout", retryable = true,
        message = ("the code %s was not approved within %g s"):format(self.user_code, opts.timeout) }
    end
    s.sleep(math.max(0, math.min(s.next_poll, deadline) - now))
  end
end

--- Ends the login: the device code is wiped (a token it gave lives on); `poll` and `wait` then raise.
function Login:close()
  local s = state[self]
  if not s or s.closed then return end
  s.device:close()
  s.closed = true
end

M.Login = Login

return M
