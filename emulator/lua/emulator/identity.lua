-- Avalara Identity (an OpenID Connect server) as far as the HS service needs
-- it: the token endpoint (client_credentials, authorization_code with PKCE,
-- refresh_token), authorize, RFC 7009 revocation and the discovery document.
-- Clients are the AvaTax accounts: client_id = account ID, secret = license key.
local util = require "emulator.util"
local conf = require "emulator.conf"
local tokens = require "emulator.tokens"
local counters = require "emulator.counters"
local device = require "emulator.device"

local M = {}

local NO_STORE = { ["Cache-Control"] = "no-store", ["Pragma"] = "no-cache" }

-- RFC 6749 section 5.2 error response.
local function oauth_error(status, code, description, headers)
  local h = { ["Cache-Control"] = "no-store", ["Pragma"] = "no-cache" }
  for k, v in pairs(headers or {}) do h[k] = v end
  return util.json(status, { error = code, error_description = description }, h)
end

-- Client authentication by HTTP Basic (id and secret each form-urlencoded
-- before base64, RFC 6749 2.3.1) or by client_id/client_secret in the form,
-- as IdentityServer's ClientSecretValidator: no client id at all is
-- `invalid_request` at the token endpoint (with `no_client` true it is
-- `invalid_client`: the revocation endpoint says so for every client failure); an
-- unknown client or a wrong or missing secret is `invalid_client`, with
-- status 400 and no WWW-Authenticate, or with the config's
-- `invalid_client_status` (401, as OpenID-certified servers answer, with
-- `WWW-Authenticate: Basic` when Basic was used). Returns account_id,
-- account, or nil after sending the error.
local function authenticate(args, no_client)
  local header = ngx.var.http_authorization
  local id, secret, basic
  if header and header:match("^%s*[Bb][Aa][Ss][Ii][Cc]%s") then
    basic = true
    local decoded = ngx.decode_base64(header:match("^%s*%a+%s+(%S*)") or "")
    local raw_id, raw_secret = (decoded or ""):match("^([^:]*):(.*)$")
    if not raw_id then
      oauth_error(400, "invalid_request", "malformed Basic credentials")
      return nil
    end
    if args.client_secret then
      oauth_error(400, "invalid_request", "more than one client authentication method")
      return nil
    end
    id, secret = util.form_decode(raw_id), util.form_decode(raw_secret)
  else
    id, secret = args.client_id, args.client_secret
  end
  local none = not id or id == ""
  if none and not no_client then
    oauth_error(400, "invalid_request")
    return nil
  end
  local account = not none and conf.account(id)
  if not account or secret ~= account.license_key then
    local status = conf.get().invalid_client_status or 400
    oauth_error(status, "invalid_client", nil,
      status == 401 and basic and { ["WWW-Authenticate"] = 'Basic realm="identity"' } or nil)
    return nil
  end
  return id, account
end

-- Space-separated scope request -> normalized string or nil (invalid).
local function check_scope(requested, allowed)
  if not requested or requested:match("^%s*$") then return conf.get().default_scope end
  local seen, out = {}, {}
  for s in requested:gmatch("%S+") do
    if not conf.contains(allowed, s) then return nil end
    if not seen[s] then seen[s] = true; out[#out + 1] = s end
  end
  return table.concat(out, " ")
end

local function issue(account_id, scope, with_refresh)
  local cfg = conf.get()
  local rec = { account = account_id, scope = scope, client_id = account_id, kind = "identity" }
  local body = {
    access_token = tokens.issue_access(rec, cfg.token_ttl),
    expires_in = math.floor(cfg.token_ttl),
    token_type = "Bearer",
    scope = scope,
  }
  if with_refresh then
    body.refresh_token = tokens.issue_refresh(
      { account = account_id, scope = scope, client_id = account_id, kind = "identity" },
      cfg.refresh_token_ttl)
  end
  counters.issued("connect_token")
  return util.json(200, body, NO_STORE)
end

local function verify_pkce(rec, verifier)
  if not rec.challenge then return true end
  if not verifier or not verifier:match("^[%w%-%._~]+$") or #verifier < 43 or #verifier > 128 then
    return false
  end
  if rec.method == "plain" then return verifier == rec.challenge end
  return util.base64url(util.sha256(verifier)) == rec.challenge
end

-- grant_type -> function(args, account_id): the grants of the token
-- endpoint, after the client is authenticated. Another grant is one more
-- entry (`identity.grants[name] = fn`).
local grants = {}
M.grants = grants

function grants.client_credentials(args, account_id)
  local scope = check_scope(args.scope, conf.get().identity_scopes)
  if not scope then return oauth_error(400, "invalid_scope", "requested scope is not allowed") end
  return issue(account_id, scope, false)
end

function grants.authorization_code(args, account_id)
  if not args.code or args.code == "" then
    return oauth_error(400, "invalid_grant", "code is required")
  end
  local rec = tokens.use_code(args.code)
  if not rec or rec.kind ~= "identity" or rec.client_id ~= account_id then
    return oauth_error(400, "invalid_grant", "invalid, expired or used authorization code")
  end
  if rec.redirect_uri ~= args.redirect_uri then
    return oauth_error(400, "invalid_grant", "redirect_uri does not match the authorization request")
  end
  if not verify_pkce(rec, args.code_verifier) then
    return oauth_error(400, "invalid_grant", "code_verifier does not match the code_challenge")
  end
  return issue(account_id, rec.scope, true)
end

function grants.refresh_token(args, account_id)
  if not args.refresh_token or args.refresh_token == "" then
    return oauth_error(400, "invalid_request", "refresh_token is required")
  end
  local peek = tokens.peek_refresh(args.refresh_token)
  if not peek or peek.kind ~= "identity" or peek.client_id ~= account_id then
    return oauth_error(400, "invalid_grant", "invalid refresh token")
  end
  local scope = peek.scope
  if args.scope and not args.scope:match("^%s*$") then
    local granted = {}
    for s in peek.scope:gmatch("%S+") do granted[#granted + 1] = s end
    scope = check_scope(args.scope, granted)
    if not scope then return oauth_error(400, "invalid_scope", "scope exceeds the original grant") end
  end
  local rec, why = tokens.use_refresh(args.refresh_token)
  if not rec then return oauth_error(400, "invalid_grant", "refresh token " .. why) end
  return issue(account_id, scope, true)
end

-- POST /connect/token, in IdentityServer's order: POST with a form body
-- (else 400 invalid_request, GET included), then the client, then the
-- grant_type (missing or unknown: unsupported_grant_type), then the grant.
function M.token(ctx)
  if ngx.req.get_method() ~= "POST" or not util.is_form() then
    return oauth_error(400, "invalid_request")
  end
  local args = ctx.args
  if args.grant_type == device.GRANT then return device.token(args) end -- RFC 8628: device.lua (client first there too)
  local account_id = authenticate(args)
  if not account_id then return end
  local grant = args.grant_type and grants[args.grant_type]
  if not grant then return oauth_error(400, "unsupported_grant_type") end
  return grant(args, account_id)
end

-- GET /connect/authorize: auto-approves and redirects with code and state.
function M.authorize()
  local args = util.params()
  local cfg = conf.get()
  local account_id = args.client_id
  if not conf.account(account_id) then
    return oauth_error(400, "invalid_request", "unknown client_id")
  end
  if not conf.redirect_allowed(cfg.redirect_uris, args.redirect_uri) then
    return oauth_error(400, "invalid_request", "redirect_uri is not registered for this client")
  end
  local sep = args.redirect_uri:find("?", 1, true) and "&" or "?"
  local function redirect(params)
    local parts = {}
    for _, kv in ipairs(params) do
      if kv[2] then parts[#parts + 1] = kv[1] .. "=" .. ngx.escape_uri(kv[2]) end
    end
    ngx.header["Location"] = args.redirect_uri .. sep .. table.concat(parts, "&")
    return util.send(302, "text/plain", "")
  end
  if args.response_type ~= "code" then
    return redirect({ { "error", "unsupported_response_type" }, { "state", args.state } })
  end
  local scope = check_scope(args.scope, cfg.identity_scopes)
  if not scope then return redirect({ { "error", "invalid_scope" }, { "state", args.state } }) end
  if cfg.deny_authorization then
    return redirect({ { "error", "access_denied" }, { "error_description", "The user denied the authorization" },
      { "state", args.state } })
  end
  local method = args.code_challenge_method or (args.code_challenge and "plain")
  if args.code_challenge and method ~= "S256" and method ~= "plain" then
    return redirect({ { "error", "invalid_request" }, { "state", args.state } })
  end
  local code = tokens.issue_code({
    kind = "identity", client_id = account_id, redirect_uri = args.redirect_uri, scope = scope,
    challenge = args.code_challenge, method = method,
  }, cfg.code_ttl)
  return redirect({ { "code", code }, { "scope", scope }, { "state", args.state } })
end

-- POST /connect/revocation (RFC 7009), as IdentityServer's endpoint: GET
-- 405 and a body that is not a form 415 (empty bodies), then the client
-- (any failure: 400 invalid_client), then `token` (missing: invalid_request)
-- and `token_type_hint` (another than access_token/refresh_token:
-- unsupported_token_type); 200 with an empty body whether or not the token
-- existed.
local HINTS = { access_token = true, refresh_token = true }

function M.revocation(ctx)
  if ngx.req.get_method() ~= "POST" then
    return util.send(405, "text/plain", "", { Allow = "POST" })
  end
  if not util.is_form() then return util.send(415, "text/plain", "") end
  local args = ctx.args
  local account_id = device.public_client(args) or authenticate(args, true)
  if not account_id then return end
  if not args.token or args.token == "" then
    return oauth_error(400, "invalid_request")
  end
  if args.token_type_hint and args.token_type_hint ~= "" and not HINTS[args.token_type_hint] then
    return oauth_error(400, "unsupported_token_type")
  end
  local refresh = tokens.peek_refresh(args.token)
  if refresh and refresh.client_id == account_id then
    tokens.revoke_refresh(args.token)
  else
    local access = tokens.lookup_access(args.token)
    if access and access.client_id == account_id then tokens.revoke_access(args.token) end
  end
  return util.send(200, "text/plain", "", NO_STORE)
end

M.DEVICE_CODE = "urn:ietf:params:oauth:grant-type:device_code"

-- GET /.well-known/openid-configuration: IdentityServer's document, its 24
-- keys (docs/api-contracts.md section 10); the issuer is the request's
-- origin. The endpoints the emulator does not serve (userinfo, end session,
-- check session, introspection) are listed as IdentityServer lists them.
-- `Cache-Control: max-age` only with the config's `discovery_max_age`
-- (IdentityServer's ResponseCacheInterval, unset by default).
function M.discovery()
  local origin = ngx.var.scheme .. "://" .. (ngx.var.http_host or (ngx.var.server_addr .. ":" .. ngx.var.server_port))
  local cfg = conf.get()
  local c = origin .. "/connect/"
  local max_age = cfg.discovery_max_age
  return util.json(200, {
    issuer = origin,
    jwks_uri = origin .. "/.well-known/openid-configuration/jwks",
    authorization_endpoint = c .. "authorize",
    token_endpoint = c .. "token",
    userinfo_endpoint = c .. "userinfo",
    end_session_endpoint = c .. "endsession",
    check_session_iframe = c .. "checksession",
    revocation_endpoint = c .. "revocation",
    introspection_endpoint = c .. "introspect",
    device_authorization_endpoint = c .. "deviceauthorization",
    frontchannel_logout_supported = true,
    frontchannel_logout_session_supported = true,
    backchannel_logout_supported = true,
    backchannel_logout_session_supported = true,
    scopes_supported = cfg.identity_scopes,
    claims_supported = { "sub" },
    grant_types_supported = { "authorization_code", "client_credentials", "refresh_token", M.DEVICE_CODE },
    response_types_supported = { "code" },
    response_modes_supported = { "form_post", "query", "fragment" },
    token_endpoint_auth_methods_supported = { "client_secret_basic", "client_secret_post" },
    id_token_signing_alg_values_supported = { "RS256" },
    subject_types_supported = { "public" },
    code_challenge_methods_supported = { "plain", "S256" },
    request_parameter_supported = true,
  }, type(max_age) == "number" and { ["Cache-Control"] = "max-age=" .. math.floor(max_age) } or nil)
end

-- GET /.well-known/openid-configuration/jwks: the key set the document
-- names. The emulator's tokens are opaque, so it holds no key.
function M.jwks()
  return util.json(200, { keys = util.EMPTY_ARRAY })
end

-- For device.lua: the token endpoint's client authentication.
M.authenticate = authenticate

return M
