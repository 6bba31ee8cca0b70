-- The 2012 AvaTax OAuth service (seeds 002 and 003): authorize,
-- access_token, generate_token and revoke under /oauth/. Errors are the
-- seed's form-urlencoded bodies byte for byte; refresh tokens are single-use.
local util = require "emulator.util"
local conf = require "emulator.conf"
local tokens = require "emulator.tokens"
local counters = require "emulator.counters"

local M = {}

-- Seed 003's table, HTML entities decoded. "state=" stays empty: the seed
-- shows no state echoed on this endpoint.
M.errors = {
  invalid_client_id =
    "error=invalid_request&error_description=Authorize+request+with+invalid+client_id%3a++&state=",
  invalid_client_secret =
    "error=invalid_request&error_description=Authorize+request+with+invalid+client_secret%3a++&state=",
  unsupported_grant_type =
    "error=unsupported_grant_type&error_description=This+access+grant+type+is+not+supported+by+this+server.&state=",
  missing_code =
    "error=invalid_grant&error_description=Value+cannot+be+empty.%0d%0aParameter+name%3a+accessGrantId&state=",
  missing_refresh_token =
    "error=invalid_token&error_description=value+argument+cannot+be+empty.%0d%0aParameter+name%3a+RefreshToken&state=",
  invalid_refresh_token = "error=invalid_token&error_description=access_denied&state=",
  invalid_code = "error=invalid_grant&error_description=access_denied&state=",
  revoked_refresh_token = "error=invalid_token&error_description=token+revoked&state=",
  -- Not in the seed (authorize with an unregistered redirect URI); same style.
  invalid_redirect_uri =
    "error=invalid_request&error_description=Authorize+request+with+invalid+redirect_uri%3a++&state=",
}

-- The seed's sample success response, verbatim (trailing comma included).
M.LEGACY_BODY = '{"token_type":"avalara",\n'
  .. '"access_token":"a136c4debbc84be7911203cbbef8b629",\n'
  .. '"scope":"CompanyUser",\n'
  .. '"refresh_token":"71b5389c06b54f91b40135f8e0f39dd6",\n'
  .. '"expires_in":"9999-12-31T23:59:59.9970000", }'
local LEGACY_ACCESS = "a136c4debbc84be7911203cbbef8b629"
local LEGACY_REFRESH = "71b5389c06b54f91b40135f8e0f39dd6"

local function fail(name)
  return util.send(400, "application/x-www-form-urlencoded", M.errors[name])
end

-- The partner record, or nil after sending the seed's error.
local function authenticate(args)
  local partners = conf.get().partners
  local partner = args.client_id and partners[args.client_id]
  if not partner then fail("invalid_client_id"); return nil end
  if args.client_secret ~= partner.secret then fail("invalid_client_secret"); return nil end
  return partner
end

-- Issues an access/refresh pair under lifecycle `life` and sends the success body.
local function issue(route, client_id, partner, life)
  local cfg = conf.get()
  local ttl = cfg.oauth2012_token_ttl or nil
  local legacy = cfg.legacy_sample_body
  local function rec()
    return {
      account = partner.account, companies = { partner.company }, scope = "CompanyUser",
      client_id = client_id, kind = "2012", life = life,
    }
  end
  local access = tokens.issue_access(rec(), ttl, legacy and LEGACY_ACCESS or nil)
  local refresh = tokens.issue_refresh(rec(), nil, legacy and LEGACY_REFRESH or nil)
  counters.issued(route)
  if legacy then
    return util.send(200, "application/json", M.LEGACY_BODY)
  end
  local body = string.format(
    '{"token_type":"avalara","access_token":"%s","scope":"CompanyUser","refresh_token":"%s","expires_in":"%s"}',
    access, refresh, cfg.oauth2012_expires_in)
  return util.send(200, "application/json", body)
end

local function redirect_ok(partner, uri)
  return conf.redirect_allowed(partner.redirect_uris, uri)
end

-- GET /oauth/authorize: auto-approves (the real one asks a CompanyUser to log in).
function M.authorize()
  local args = util.params()
  local partner = args.client_id and conf.get().partners[args.client_id]
  if not partner then return fail("invalid_client_id") end
  if not redirect_ok(partner, args.redirect_uri) then return fail("invalid_redirect_uri") end
  local sep = args.redirect_uri:find("?", 1, true) and "&" or "?"
  local state = args.state and ("&state=" .. ngx.escape_uri(args.state)) or ""
  if conf.get().deny_authorization then
    -- The customer refused: the seed's error style, with the state echoed.
    ngx.header["Location"] = args.redirect_uri .. sep
      .. "error=access_denied&error_description=The+user+denied+the+authorization" .. state
    return util.send(302, "text/plain", "")
  end
  local code = tokens.issue_code({
    kind = "2012", client_id = args.client_id, redirect_uri = args.redirect_uri,
    life = tokens.new_lifecycle(),
  }, conf.get().code_ttl)
  ngx.header["Location"] = args.redirect_uri .. sep .. "code=" .. code .. state
  return util.send(302, "text/plain", "")
end

-- POST /oauth/access_token
function M.access_token(ctx)
  if ngx.req.get_method() ~= "POST" then
    return util.send(405, "text/plain", "use POST", { Allow = "POST" })
  end
  local args = ctx.args
  local partner = authenticate(args)
  if not partner then return end
  local grant = args.grant_type
  if grant == "authorization_code" then
    if not args.code or args.code == "" then return fail("missing_code") end
    local rec = tokens.use_code(args.code)
    if not rec or rec.kind ~= "2012" or rec.client_id ~= args.client_id
        or rec.redirect_uri ~= args.redirect_uri then
      return fail("invalid_code")
    end
    return issue(ctx.route, args.client_id, partner, rec.life)
  elseif grant == "refresh_token" then
    local rt = args.refresh_token
    if not rt or rt == "" then return fail("missing_refresh_token") end
    local peek = tokens.peek_refresh(rt)
    if not peek or peek.kind ~= "2012" or peek.client_id ~= args.client_id then
      return fail("invalid_refresh_token")
    end
    local rec, why = tokens.use_refresh(rt)
    if not rec then
      return fail(why == "unknown" and "invalid_refresh_token" or "revoked_refresh_token")
    end
    return issue(ctx.route, args.client_id, partner, rec.life)
  end
  return fail("unsupported_grant_type")
end

-- GET|POST /oauth/generate_token: a partner's self-granted authorization.
function M.generate_token(ctx)
  local partner = authenticate(ctx.args)
  if not partner then return end
  return issue(ctx.route, ctx.args.client_id, partner, tokens.new_lifecycle())
end

-- POST /oauth/revoke: revokes the whole authorization lifecycle of the
-- given access or refresh token; 200 even for an unknown token.
function M.revoke(ctx)
  if ngx.req.get_method() ~= "POST" then
    return util.send(405, "text/plain", "use POST", { Allow = "POST" })
  end
  local args = ctx.args
  if not authenticate(args) then return end
  local tok = args.token or args.access_token or args.refresh_token
  if tok and tok ~= "" then
    local rec = tokens.peek_refresh(tok) or tokens.peek_access(tok)
    if rec and rec.kind == "2012" and rec.client_id == args.client_id and rec.life then
      tokens.revoke_lifecycle(rec.life)
    end
  end
  return util.send(200, "text/plain", "")
end

return M
