-- The device authorization grant (RFC 8628) as Avalara Identity publishes it
-- (POST /connect/deviceauthorization, grant urn:ietf:params:oauth:grant-type:device_code):
-- the device authorization endpoint, the token endpoint's device_code grant
-- and the verification page (GET /device shows a form; POST /device approves or
-- denies a user code after the user signs in with an account ID and license key).
-- Clients authenticate as at /connect/token, or, for the public clients of
-- `device_clients` (a CLI cannot keep a secret), by client_id alone.
-- Errors are IdentityServer's: 400 and {"error": ...}.
local util = require "emulator.util"
local conf = require "emulator.conf"
local tokens = require "emulator.tokens"
local counters = require "emulator.counters"

local codes = ngx.shared.emu_codes

local M = {}

--- The grant_type of the token endpoint's device code grant.
M.GRANT = "urn:ietf:params:oauth:grant-type:device_code"

local NO_STORE = { ["Cache-Control"] = "no-store", ["Pragma"] = "no-cache" }

local function oauth_error(code, description)
  return util.json(400, { error = code, error_description = description }, NO_STORE)
end

local function origin()
  return ngx.var.scheme .. "://" .. (ngx.var.http_host or (ngx.var.server_addr .. ":" .. ngx.var.server_port))
end

-- The public client named by the request (client_id alone, no secret, no
-- Authorization header), or nil.
function M.public_client(args)
  local id = args.client_id
  if not id or args.client_secret or ngx.var.http_authorization then return nil end
  return conf.contains(conf.get().device_clients or {}, id) and id or nil
end

-- The authenticated client id, or nil after answering the error.
local function client(args)
  local public = M.public_client(args)
  if public then return public end
  local id = require("emulator.identity").authenticate(args)
  return id
end

local function check_scope(requested)
  local cfg = conf.get()
  if not requested or requested:match("^%s*$") then return cfg.default_scope end
  local seen, out = {}, {}
  for s in requested:gmatch("%S+") do
    if not conf.contains(cfg.identity_scopes, s) then return nil end
    if not seen[s] then seen[s] = true; out[#out + 1] = s end
  end
  return table.concat(out, " ")
end

-- RFC 8628 6.1: 20 consonants, no vowels, 8 characters shown as XXXX-XXXX.
local ALPHABET = "BCDFGHJKLMNPQRSTVWXZ"

local function new_user_code()
  local bytes, out = util.random_bytes(8), {}
  for i = 1, 8 do
    local n = bytes:byte(i) % #ALPHABET + 1
    out[i] = ALPHABET:sub(n, n)
  end
  return table.concat(out, "", 1, 4) .. "-" .. table.concat(out, "", 5, 8)
end

-- What the user typed -> the canonical code (case, dashes and spaces ignored).
local function normalize(user_code)
  local c = tostring(user_code or ""):upper():gsub("[%s%-]", "")
  if #c ~= 8 then return nil end
  return c:sub(1, 4) .. "-" .. c:sub(5, 8)
end

local function load(device_code)
  local raw = codes:get("d:" .. device_code)
  return raw and util.json_decode(raw) or nil
end

local function save(device_code, rec)
  local ttl = math.max(rec.exp - util.now(), 0) + 60
  local ok, err = codes:set("d:" .. device_code, util.json_encode(rec), ttl)
  if not ok then error("emulator: shared dict full: " .. tostring(err)) end
end

-- POST /connect/deviceauthorization (RFC 8628 3.1, 3.2).
function M.authorization(ctx)
  if not util.is_form() then
    return oauth_error("invalid_request", "Content-Type must be application/x-www-form-urlencoded")
  end
  local args = ctx.args
  local client_id = client(args)
  if not client_id then return end
  local scope = check_scope(args.scope)
  if not scope then return oauth_error("invalid_scope", "requested scope is not allowed") end
  local cfg = conf.get()
  local ttl, interval = cfg.device_code_ttl or 300, cfg.device_interval or 5
  local device_code, user_code = util.token() .. util.token(), new_user_code()
  local now = util.now()
  save(device_code, { client_id = client_id, scope = scope, user_code = user_code, exp = now + ttl,
    interval = interval, status = "pending" })
  codes:set("uc:" .. user_code, device_code, ttl + 60)
  counters.issued("connect_deviceauthorization")
  local base = origin() .. "/device"
  return util.json(200, {
    device_code = device_code,
    user_code = user_code,
    verification_uri = base,
    verification_uri_complete = base .. "?user_code=" .. user_code,
    expires_in = math.floor(ttl),
    interval = math.floor(interval),
  }, NO_STORE)
end

-- The token endpoint's device_code grant (RFC 8628 3.4, 3.5).
function M.token(args)
  local client_id = client(args)
  if not client_id then return end
  local device_code = args.device_code
  if not device_code or device_code == "" then return oauth_error("invalid_request", "device_code is required") end
  local rec = load(device_code)
  if not rec or rec.client_id ~= client_id then
    return oauth_error("invalid_grant", "invalid device code")
  end
  local now = util.now()
  if codes:get("u:" .. device_code) then return oauth_error("invalid_grant", "device code already used") end
  if now >= rec.exp then return oauth_error("expired_token", "the device code has expired") end
  local last = rec.last_poll
  rec.last_poll = now
  local forced = (conf.get().device_slow_down or 0) >= (codes:incr("slow_down_forced", 1, 0) or 0)
  if forced or (last and now - last < rec.interval) then
    rec.interval = rec.interval + 5 -- the client must slow down by 5 s (3.5); so does the server
    save(device_code, rec)
    return oauth_error("slow_down", "polling too fast: wait " .. rec.interval .. " s between requests")
  end
  save(device_code, rec)
  if rec.status == "pending" then
    return oauth_error("authorization_pending", "the user has not yet approved the request")
  end
  if not codes:add("u:" .. device_code, true, math.max(rec.exp - now, 0) + 60) then
    return oauth_error("invalid_grant", "device code already used")
  end
  if rec.status == "denied" then
    return oauth_error("access_denied", "the user denied the authorization request")
  end
  local cfg = conf.get()
  local body = {
    access_token = tokens.issue_access({ account = rec.account, scope = rec.scope, client_id = client_id,
      kind = "identity" }, cfg.token_ttl),
    expires_in = math.floor(cfg.token_ttl),
    token_type = "Bearer",
    scope = rec.scope,
  }
  counters.issued("connect_token")
  return util.json(200, body, NO_STORE)
end

local function html_escape(s)
  return (tostring(s):gsub("[&<>\"']", { ["&"] = "&amp;", ["<"] = "&lt;", [">"] = "&gt;", ['"'] = "&quot;",
    ["'"] = "&#39;" }))
end

local function page(status, title, body)
  return util.send(status, "text/html; charset=utf-8", ("<!doctype html><html><head><meta charset=\"utf-8\">"
    .. "<title>%s</title></head><body><h1>%s</h1>%s</body></html>\n"):format(title, title, body), NO_STORE)
end

local FORM = [[
<p>Enter the code shown on your device, sign in and approve or deny.</p>
<form method="post" action="/device">
<label>Code <input name="user_code" value="%s" autocomplete="off"></label><br>
<label>Account ID <input name="account_id"></label><br>
<label>License key <input name="license_key" type="password"></label><br>
<button name="action" value="approve">Approve</button> <button name="action" value="deny">Deny</button>
</form>
]]

-- GET /device[?user_code=...]: the verification page's form.
function M.page()
  local args = util.params()
  return page(200, "Device sign-in", FORM:format(html_escape(normalize(args.user_code) or "")))
end

-- POST /device: user_code, action = approve (with account_id and license_key) | deny.
function M.verify(ctx)
  local args = ctx.args
  local user_code = normalize(args.user_code)
  local device_code = user_code and codes:get("uc:" .. user_code)
  local rec = device_code and load(device_code)
  if not rec or util.now() >= rec.exp then
    return page(400, "Unknown code", "<p>This code is unknown or has expired.</p>")
  end
  if rec.status ~= "pending" then
    return page(400, "Already answered", "<p>This code was already " .. rec.status .. ".</p>")
  end
  if args.action == "deny" then
    rec.status = "denied"
  elseif args.action == "approve" then
    local account = conf.account(args.account_id)
    if not account or args.license_key ~= account.license_key then
      return page(400, "Sign-in failed", "<p>Unknown account or wrong license key.</p>")
    end
    rec.status, rec.account = "approved", args.account_id
  else
    return page(400, "Approve or deny", "<p>action must be approve or deny.</p>")
  end
  save(device_code, rec)
  return page(200, rec.status == "approved" and "Approved" or "Denied",
    "<p>You can return to your device.</p>")
end

return M
