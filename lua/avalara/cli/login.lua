--- `hscode login`: signs in at Avalara Identity with the device authorization
-- grant (RFC 8628, `avalara.device`), as `gh auth login` does: prints a code
-- and a URL, waits while the person approves in a browser, and keeps the
-- access token in the token store (`tokens.db`). Commands then use it when
-- no license key is given (`M.source`, for `avalara.cli.common.make_client`).
-- @module avalara.cli.login
local avalara = require "avalara"
local device = require "avalara.device"
local clock = require "avalara.clock"
local errors = require "avalara.error"

local M = {}

--- What it does, for `hscode --help`.
M.summary = "sign in with a code in a browser (no license key kept)"
--- What Ctrl-C says while it waits.
M.interrupted = "cancelled: not signed in"

--- The command's own options.
M.options = { scope = { "SCOPE" }, wait = { "SECONDS" } }

--- The client id of hscode's device logins when neither --client-id nor AVALARA_LOGIN_CLIENT_ID is given
-- (the emulator's public client).
M.CLIENT_ID = "hscode-cli"

--- The command's help.
M.help = [[
Usage: hscode login [--scope SCOPE] [--wait SECONDS] [--client-id ID] [options]

Signs in at Avalara Identity with a code (the device authorization grant,
RFC 8628): prints the code, the URL where to enter it and the URL that
carries it, waits while you approve in a browser (on any device), then keeps
the access token in the token store ($XDG_CACHE_HOME/avalara-hscode/tokens.db,
mode 0600). Commands use it when no license key is given (--license-key,
AVALARA_LICENSE_KEY), until it expires or hscode logout. No license key is
typed, kept or shown.

  --scope SCOPE        the scope to ask for (default: the environment's)
  --wait SECONDS       how long to wait for the approval (default: until
                       the code expires)
  --client-id ID       the client registered with Avalara Identity for the
                       device grant [AVALARA_LOGIN_CLIENT_ID] (default
                       hscode-cli, the emulator's public client); a
                       confidential one takes --client-secret-file too

Example: hscode login --env local
]]

-- The endpoints of `environment`: its token URL (with --env local, the emulator's) and the device
-- authorization endpoint next to it.
local function token_url_of(environment, emulator_url)
  if environment == "local" then return (emulator_url:gsub("/+$", "")) .. "/connect/token" end
  return avalara.environments[environment].token_url
end
M.token_url = token_url_of

--- The store key of the login for a token URL (keys hold no secret).
-- @string token_url
-- @treturn string
function M.key(token_url) return "hscode-login " .. token_url end

local Source = {}
Source.__index = Source
Source.__tostring = function() return "the login of hscode login" end

--- The access token of the stored login (`token_source` of `avalara.new`): nil, err once the API
-- refused it or it expired.
-- @param _ the client
-- @param[opt] stale the access token the API just refused
function Source:token(_, stale)
  if stale ~= nil or (self.rec.expires_at and self.rec.expires_at <= clock.now()) then
    return nil, errors.new { kind = "oauth",
      message = "the login of hscode login was refused or has expired: run hscode login again" }
  end
  return { access_token = self.rec.access_token, token_type = self.rec.token_type, scope = self.rec.scope,
    expires_at = self.rec.expires_at }
end

--- The stored login for `token_url` as a token source, or nil (none, expired, or the store failed).
-- @param sys the command's system table (`store`)
-- @string token_url
-- @return the source, or nil and why ("expired" or nil)
function M.source(sys, token_url)
  local rec = sys.store():get(M.key(token_url))
  if type(rec) ~= "table" or type(rec.access_token) ~= "string" then return nil end
  if rec.expires_at and rec.expires_at <= clock.now() then return nil, "expired" end
  return setmetatable({ rec = rec }, Source)
end

local SPIN = { "|", "/", "-", "\\" }

-- Polls until a token: a spinner and the time left on a terminal, plain lines otherwise.
local function wait_for(sys, login, wait, cli, tty)
  local started = clock.now()
  local deadline = math.min(wait and started + wait or math.huge, login.expires_at)
  if not tty then
    sys.stderr:write(("hscode: waiting for the approval (the code expires in %s)\n")
      :format(cli.duration(login.expires_at - started)))
    sys.stderr:flush()
  end
  local i = 0
  while true do
    local token, err = login:poll()
    if token then
      if tty then sys.stderr:write("\r\27[K") end
      return token
    end
    if err ~= "pending" and not err.retryable then
      if tty then sys.stderr:write("\r\27[K") end
      return nil, err
    end
    local now = clock.now()
    if now >= deadline then
      if tty then sys.stderr:write("\r\27[K") end
      if now >= login.expires_at then return nil, select(2, login:poll()) end
      cli.fail(cli.EXIT.failed, ("the code %s was not approved within %g s: run hscode login again")
        :format(login.user_code, wait))
    end
    if tty then
      i = i + 1
      sys.stderr:write(("\r%s waiting for the approval of %s (%s left)\27[K"):format(SPIN[i % 4 + 1],
        login.user_code, cli.duration(login.expires_at - now)))
      sys.stderr:flush()
    end
    clock.sleep(math.min(0.2, math.max(0, deadline - now)))
  end
end

--- Runs `hscode login`.
-- @tparam table sys
-- @tparam table opts
-- @tparam table args
-- @tparam table cli the helpers of `avalara.cli`
function M.run(sys, opts, args, cli)
  if #args > 0 then cli.usage_error("login takes no arguments", "login") end
  local wait = cli.positive_number(opts, "wait", "login")
  local environment = opts.env or cli.getenv(sys, "AVALARA_ENVIRONMENT") or "production"
  local env = avalara.environments[environment]
  if not env then
    cli.fail(opts.env and cli.EXIT.usage or cli.EXIT.config, "unknown environment '" .. environment
      .. "' (production, sandbox or local)")
  end
  local token_url = token_url_of(environment, opts.emulator_url or cli.getenv(sys, "AVALARA_EMULATOR_URL")
    or cli.DEFAULT_EMULATOR_URL)
  local client_id = opts.client_id or cli.getenv(sys, "AVALARA_LOGIN_CLIENT_ID") or M.CLIENT_ID
  local ok, login, err = pcall(device.start, {
    url = token_url:gsub("/connect/token$", "/connect/deviceauthorization"), token_url = token_url,
    client_id = client_id, client_secret = opts.client_secret, scope = opts.scope or env.scope,
    cafile = opts.cafile or cli.getenv(sys, "AVALARA_CAFILE"), timeout = cli.positive_number(opts, "timeout"),
  })
  if not ok then
    errors.rethrow_interrupt(login)
    cli.fail(cli.EXIT.config, (tostring(login):gsub("^.-avalara%.device%.start: ", "")))
  end
  if not login then cli.request_failed("cannot start the login", err) end

  -- asked before the code is shown: the default isatty runs a shell, and system(3) ignores SIGINT meanwhile
  local tty = sys.isatty(2)
  sys.stderr:write("To sign in, open the URL in a browser (on any device) and enter the code:\n")
  cli.write_fields(sys, { { "code", login.user_code }, { "url", login.verification_uri },
    { "complete url", login.verification_uri_complete } })
  sys.stdout:flush()

  local token, werr = wait_for(sys, login, wait, cli, tty)
  login:close()
  if not token then cli.request_failed("not signed in", werr) end
  local expires_at = token:expires_at()
  local rec = { access_token = token:access_token(), token_type = token:token_type(), scope = token:scope(),
    expires_at = expires_at, client_id = client_id, token_url = token_url, environment = environment,
    confidential = opts.client_secret ~= nil }
  token:close()
  local stored, serr = sys.store():set(M.key(token_url), rec, expires_at and math.max(1, expires_at - clock.now()))
  if not stored then cli.fail(cli.EXIT.config, "cannot keep the login: " .. tostring(serr)) end
  cli.write_fields(sys, { { "signed in", environment }, { "scope", rec.scope },
    { "expires at", expires_at and os.date("!%Y-%m-%dT%H:%M:%SZ", math.floor(expires_at)) } })
  sys.stderr:write("Commands use this login when no license key is given; hscode logout ends it.\n")
end

return M
