-- Identity: /connect/token, /connect/authorize, /connect/revocation and the
-- discovery document, against a running emulator.
local emu = require "spec.support.emulator"
local mime = require "mime"
local socket = require "socket"

local ACCOUNT, KEY = "2000000001", "DEMO-LICENSE-KEY-0001"
local CALLBACK = "http://127.0.0.1/callback"

local function basic(id, secret)
  return "Basic " .. mime.b64(id .. ":" .. secret)
end

-- RFC 7636 S256 challenge, computed with the openssl command line.
local function s256(verifier)
  local p = assert(io.popen("printf '%s' '" .. verifier .. "' | openssl dgst -sha256 -binary | openssl base64 -A"))
  local b64 = p:read("*a")
  p:close()
  return (b64:gsub("%+", "-"):gsub("/", "_"):gsub("=", ""):gsub("%s", ""))
end

local function query_param(url, name)
  local v = url:match("[?&]" .. name .. "=([^&]*)")
  return v and (v:gsub("%%(%x%x)", function(h) return string.char(tonumber(h, 16)) end))
end

describe("emulator identity", function()
  local e
  setup(function() e = emu.start() end)
  teardown(function() e:stop() end)
  before_each(function() e:reset() end)

  local function token(form, headers)
    return assert(e:request("POST", "/connect/token", { form = form, headers = headers }))
  end

  local function authorize(params)
    local q = emu.form_encode(params)
    local res = assert(e:request("GET", "/connect/authorize?" .. q))
    return res
  end

  describe("client_credentials", function()
    it("issues a Bearer token with the requested scope and the TTL #smoke", function()
      local res = token({ grant_type = "client_credentials", client_id = ACCOUNT, client_secret = KEY,
        scope = "hs-code-classification" })
      assert.equal(200, res.status)
      assert.matches("^application/json", res.headers["content-type"])
      assert.equal("no-store", res.headers["cache-control"])
      assert.equal("Bearer", res.json.token_type)
      assert.equal(3600, res.json.expires_in)
      assert.equal("hs-code-classification", res.json.scope)
      assert.matches("^%x+$", res.json.access_token)
      assert.is_nil(res.json.refresh_token)
      assert.truthy(res.headers["x-correlation-id"])
    end)

    it("grants avatax_api and profile, and a space-separated set", function()
      for _, scope in ipairs({ "avatax_api", "profile", "hs-code-classification avatax_api" }) do
        local res = token({ grant_type = "client_credentials", client_id = ACCOUNT, client_secret = KEY, scope = scope })
        assert.equal(200, res.status)
        assert.equal(scope, res.json.scope)
      end
    end)

    it("defaults to hs-code-classification without a scope", function()
      local res = token({ grant_type = "client_credentials", client_id = ACCOUNT, client_secret = KEY })
      assert.equal("hs-code-classification", res.json.scope)
    end)

    it("issues distinct random tokens", function()
      local a = e:token()
      local b = e:token()
      assert.not_equal(a, b)
      assert.equal(32, #a)
    end)

    it("works for the sandbox account", function()
      local res = token({ grant_type = "client_credentials", client_id = "2000000002",
        client_secret = "DEMO-SANDBOX-KEY-0002" })
      assert.equal(200, res.status)
    end)

    it("refuses an unknown scope with 400 invalid_scope", function()
      local res = token({ grant_type = "client_credentials", client_id = ACCOUNT, client_secret = KEY, scope = "openid admin" })
      assert.equal(400, res.status)
      assert.equal("invalid_scope", res.json.error)
      assert.is_string(res.json.error_description)
    end)
  end)

  describe("client authentication", function()
    it("refuses a wrong or missing secret with 400 invalid_client, as IdentityServer does", function()
      for _, secret in ipairs { "nope", false } do
        local res = token({ grant_type = "client_credentials", client_id = ACCOUNT, client_secret = secret or nil })
        assert.equal(400, res.status)
        assert.equal('{"error":"invalid_client"}', res.body)
        assert.is_nil(res.headers["www-authenticate"])
        assert.equal("no-store", res.headers["cache-control"])
      end
    end)

    it("refuses an unknown client with invalid_client, and no client at all with invalid_request", function()
      local res = token({ grant_type = "client_credentials", client_id = "42", client_secret = KEY })
      assert.equal(400, res.status)
      assert.equal("invalid_client", res.json.error)
      res = token({ grant_type = "client_credentials" })
      assert.equal(400, res.status)
      assert.equal("invalid_request", res.json.error)
    end)

    it("answers 401 like an OpenID-certified server with invalid_client_status = 401", function()
      e:configure({ invalid_client_status = 401 })
      local res = token({ grant_type = "client_credentials", client_id = ACCOUNT, client_secret = "nope" })
      assert.equal(401, res.status)
      assert.equal('{"error":"invalid_client"}', res.body)
      assert.is_nil(res.headers["www-authenticate"])
      res = token({ grant_type = "client_credentials" }, { authorization = basic(ACCOUNT, "wrong") })
      assert.equal(401, res.status)
      assert.matches("^Basic", res.headers["www-authenticate"])
      -- the other errors keep their 400
      assert.equal(400, token({ grant_type = "client_credentials" }).status)
      assert.equal(400, e:request("POST", "/_emulator/config", { json = { invalid_client_status = 403 } }).status)
    end)

    it("accepts HTTP Basic", function()
      local res = token({ grant_type = "client_credentials" }, { authorization = basic(ACCOUNT, KEY) })
      assert.equal(200, res.status)
    end)

    it("answers a failed Basic authentication with 400 and no WWW-Authenticate", function()
      local res = token({ grant_type = "client_credentials" }, { authorization = basic(ACCOUNT, "wrong") })
      assert.equal(400, res.status)
      assert.equal("invalid_client", res.json.error)
      assert.is_nil(res.headers["www-authenticate"])
    end)

    it("form-urlencodes id and secret inside Basic (RFC 6749 2.3.1)", function()
      local cfg = e:request("GET", "/_emulator/config").json
      cfg.accounts["2000000003"] = { license_key = "a+b c%d:e", companies = { 1003 } }
      e:configure({ accounts = cfg.accounts })
      local encoded = emu.form_encode({ x = "a+b c%d:e" }):sub(3)
      assert.equal("a%2Bb%20c%25d%3Ae", encoded)
      local ok = token({ grant_type = "client_credentials" }, { authorization = basic("2000000003", encoded) })
      assert.equal(200, ok.status)
      -- "+" for a space is form-urlencoding too.
      local plus = token({ grant_type = "client_credentials" },
        { authorization = basic("2000000003", "a%2Bb+c%25d%3Ae") })
      assert.equal(200, plus.status)
      -- The raw secret decodes to something else ("+" becomes a space).
      local raw = token({ grant_type = "client_credentials" }, { authorization = basic("2000000003", "a+b c%d:e") })
      assert.equal(400, raw.status)
      assert.equal("invalid_client", raw.json.error)
      -- The post method takes the secret as is.
      local post = token({ grant_type = "client_credentials", client_id = "2000000003", client_secret = "a+b c%d:e" })
      assert.equal(200, post.status)
    end)

    it("refuses two authentication methods at once", function()
      local res = token({ grant_type = "client_credentials", client_secret = KEY }, { authorization = basic(ACCOUNT, KEY) })
      assert.equal(400, res.status)
      assert.equal("invalid_request", res.json.error)
    end)
  end)

  describe("request errors", function()
    it("a missing grant_type is unsupported_grant_type", function()
      local res = token({ client_id = ACCOUNT, client_secret = KEY })
      assert.equal(400, res.status)
      assert.equal('{"error":"unsupported_grant_type"}', res.body)
    end)

    it("checks the client before the grant_type", function()
      for _, gt in ipairs { false, "password", "client_credentials" } do
        local res = token({ grant_type = gt or nil, client_id = ACCOUNT, client_secret = "nope" })
        assert.equal(400, res.status)
        assert.equal("invalid_client", res.json.error)
        res = token({ grant_type = gt or nil })
        assert.equal("invalid_request", res.json.error)
      end
    end)

    it("refuses an unknown grant_type", function()
      local res = token({ grant_type = "password", client_id = ACCOUNT, client_secret = KEY })
      assert.equal(400, res.status)
      assert.equal("unsupported_grant_type", res.json.error)
    end)

    it("needs a form body, before the client is looked at", function()
      local res = assert(e:request("POST", "/connect/token", { json = { grant_type = "client_credentials",
        client_id = ACCOUNT, client_secret = "nope" } }))
      assert.equal(400, res.status)
      assert.equal("invalid_request", res.json.error)
    end)

    it("needs POST: a GET is 400 invalid_request (IdentityServer's one answer for both)", function()
      local res = assert(e:request("GET", "/connect/token?grant_type=client_credentials"))
      assert.equal(400, res.status)
      assert.equal("invalid_request", res.json.error)
    end)
  end)

  describe("authorization_code", function()
    it("redirects with code and state, then exchanges the code once", function()
      local res = authorize({ client_id = ACCOUNT, redirect_uri = CALLBACK, response_type = "code",
        state = "xyz 1", scope = "hs-code-classification" })
      assert.equal(302, res.status)
      local location = res.headers.location
      assert.equal(CALLBACK .. "?", location:sub(1, #CALLBACK + 1))
      assert.equal("xyz 1", query_param(location, "state"))
      local code = query_param(location, "code")
      assert.matches("^%x+$", code)

      local form = { grant_type = "authorization_code", code = code, redirect_uri = CALLBACK,
        client_id = ACCOUNT, client_secret = KEY }
      local ok = token(form)
      assert.equal(200, ok.status)
      assert.equal("Bearer", ok.json.token_type)
      assert.equal("hs-code-classification", ok.json.scope)
      assert.matches("^%x+$", ok.json.refresh_token)

      local again = token(form)
      assert.equal(400, again.status)
      assert.equal("invalid_grant", again.json.error)
    end)

    it("checks the redirect_uri and the client of the code", function()
      local code = query_param(authorize({ client_id = ACCOUNT, redirect_uri = CALLBACK, response_type = "code" })
        .headers.location, "code")
      local res = token({ grant_type = "authorization_code", code = code, redirect_uri = "http://127.0.0.1/other",
        client_id = ACCOUNT, client_secret = KEY })
      assert.equal(400, res.status)
      assert.equal("invalid_grant", res.json.error)
      local code2 = query_param(authorize({ client_id = ACCOUNT, redirect_uri = CALLBACK, response_type = "code" })
        .headers.location, "code")
      local other = token({ grant_type = "authorization_code", code = code2, redirect_uri = CALLBACK,
        client_id = "2000000002", client_secret = "DEMO-SANDBOX-KEY-0002" })
      assert.equal("invalid_grant", other.json.error)
    end)

    it("refuses an unknown code and a missing one", function()
      local base = { grant_type = "authorization_code", redirect_uri = CALLBACK, client_id = ACCOUNT, client_secret = KEY }
      base.code = "deadbeef"
      assert.equal("invalid_grant", token(base).json.error)
      base.code = nil
      local res = token(base)
      assert.equal(400, res.status)
      assert.equal("invalid_grant", res.json.error)
    end)

    it("verifies a PKCE S256 code_verifier", function()
      local verifier = string.rep("v", 20) .. "-._~" .. string.rep("9", 30)
      local challenge = s256(verifier)
      local function new_code()
        return query_param(authorize({ client_id = ACCOUNT, redirect_uri = CALLBACK, response_type = "code",
          code_challenge = challenge, code_challenge_method = "S256" }).headers.location, "code")
      end
      local form = { grant_type = "authorization_code", redirect_uri = CALLBACK, client_id = ACCOUNT, client_secret = KEY }
      form.code = new_code()
      form.code_verifier = verifier:sub(2) .. "x"
      local bad = token(form)
      assert.equal(400, bad.status)
      assert.equal("invalid_grant", bad.json.error)
      form.code = new_code()
      form.code_verifier = nil
      assert.equal("invalid_grant", token(form).json.error)
      form.code = new_code()
      form.code_verifier = verifier
      assert.equal(200, token(form).status)
    end)

    it("answers 400 JSON for an unknown client or redirect URI, and redirects other errors", function()
      local res = authorize({ client_id = "nobody", redirect_uri = CALLBACK, response_type = "code" })
      assert.equal(400, res.status)
      assert.equal("invalid_request", res.json.error)
      res = authorize({ client_id = ACCOUNT, redirect_uri = "http://evil.example/cb", response_type = "code" })
      assert.equal(400, res.status)
      res = authorize({ client_id = ACCOUNT, redirect_uri = CALLBACK, response_type = "token", state = "s" })
      assert.equal(302, res.status)
      assert.equal("unsupported_response_type", query_param(res.headers.location, "error"))
      assert.equal("s", query_param(res.headers.location, "state"))
      res = authorize({ client_id = ACCOUNT, redirect_uri = CALLBACK, response_type = "code", scope = "admin" })
      assert.equal("invalid_scope", query_param(res.headers.location, "error"))
    end)
  end)

  describe("refresh_token", function()
    local function refresh_pair()
      local code = query_param(authorize({ client_id = ACCOUNT, redirect_uri = CALLBACK, response_type = "code",
        scope = "avatax_api" }).headers.location, "code")
      return token({ grant_type = "authorization_code", code = code, redirect_uri = CALLBACK,
        client_id = ACCOUNT, client_secret = KEY }).json
    end

    it("rotates refresh tokens, each usable once", function()
      local first = refresh_pair()
      local form = { grant_type = "refresh_token", refresh_token = first.refresh_token,
        client_id = ACCOUNT, client_secret = KEY }
      local second = token(form)
      assert.equal(200, second.status)
      assert.equal("avatax_api", second.json.scope)
      assert.not_equal(first.refresh_token, second.json.refresh_token)
      assert.not_equal(first.access_token, second.json.access_token)
      local reuse = token(form)
      assert.equal(400, reuse.status)
      assert.equal("invalid_grant", reuse.json.error)
      form.refresh_token = second.json.refresh_token
      assert.equal(200, token(form).status)
    end)

    it("refuses a refresh token of another client, an unknown one and a missing one", function()
      local pair = refresh_pair()
      local res = token({ grant_type = "refresh_token", refresh_token = pair.refresh_token,
        client_id = "2000000002", client_secret = "DEMO-SANDBOX-KEY-0002" })
      assert.equal("invalid_grant", res.json.error)
      -- the failed attempt did not consume it
      assert.equal(200, token({ grant_type = "refresh_token", refresh_token = pair.refresh_token,
        client_id = ACCOUNT, client_secret = KEY }).status)
      assert.equal("invalid_grant", token({ grant_type = "refresh_token", refresh_token = "00",
        client_id = ACCOUNT, client_secret = KEY }).json.error)
      assert.equal("invalid_request", token({ grant_type = "refresh_token",
        client_id = ACCOUNT, client_secret = KEY }).json.error)
    end)

    it("refuses a wider scope than the original grant", function()
      local pair = refresh_pair()
      local res = token({ grant_type = "refresh_token", refresh_token = pair.refresh_token, scope = "profile",
        client_id = ACCOUNT, client_secret = KEY })
      assert.equal(400, res.status)
      assert.equal("invalid_scope", res.json.error)
    end)
  end)

  describe("token lifetime", function()
    it("expires access tokens after the configured TTL", function()
      e:configure({ token_ttl = 1 })
      local res = token({ grant_type = "client_credentials", client_id = ACCOUNT, client_secret = KEY })
      assert.equal(1, res.json.expires_in)
      local auth = { authorization = "Bearer " .. res.json.access_token }
      assert.equal(200, e:request("GET", "/api/v2/definitions/crossborder/sections", { headers = auth }).status)
      socket.sleep(1.2)
      local late = e:request("GET", "/api/v2/definitions/crossborder/sections", { headers = auth })
      assert.equal(401, late.status)
      assert.equal("BearerTokenInvalid", late.json.error.code)
    end)
  end)

  describe("revocation", function()
    it("revokes an access token and always answers 200", function()
      local tok = e:token()
      local res = assert(e:request("POST", "/connect/revocation", { form = { token = tok,
        client_id = ACCOUNT, client_secret = KEY } }))
      assert.equal(200, res.status)
      local api = e:request("GET", "/api/v2/definitions/crossborder/sections",
        { headers = { authorization = "Bearer " .. tok } })
      assert.equal(401, api.status)
      assert.equal(200, e:request("POST", "/connect/revocation", { form = { token = "unknown",
        client_id = ACCOUNT, client_secret = KEY } }).status)
    end)

    it("revokes a refresh token", function()
      local code = query_param(authorize({ client_id = ACCOUNT, redirect_uri = CALLBACK, response_type = "code" })
        .headers.location, "code")
      local pair = token({ grant_type = "authorization_code", code = code, redirect_uri = CALLBACK,
        client_id = ACCOUNT, client_secret = KEY }).json
      assert.equal(200, e:request("POST", "/connect/revocation", {
        form = { token = pair.refresh_token, token_type_hint = "refresh_token" },
        headers = { authorization = basic(ACCOUNT, KEY) } }).status)
      local res = token({ grant_type = "refresh_token", refresh_token = pair.refresh_token,
        client_id = ACCOUNT, client_secret = KEY })
      assert.equal("invalid_grant", res.json.error)
    end)

    it("needs client authentication: 400 invalid_client for a bad client or none", function()
      for _, form in ipairs { { token = "x", client_id = ACCOUNT, client_secret = "bad" }, { token = "x" } } do
        local res = assert(e:request("POST", "/connect/revocation", { form = form }))
        assert.equal(400, res.status)
        assert.equal('{"error":"invalid_client"}', res.body)
        assert.is_nil(res.headers["www-authenticate"])
      end
      e:configure({ invalid_client_status = 401 })
      assert.equal(401, e:request("POST", "/connect/revocation", { form = { token = "x" } }).status)
    end)

    it("answers 415 to a body that is not a form, 405 to a GET, 400 to a missing token or a bad hint", function()
      local res = assert(e:request("POST", "/connect/revocation", { json = { token = "x" },
        headers = { authorization = basic(ACCOUNT, KEY) } }))
      assert.equal(415, res.status)
      assert.equal("", res.body)
      assert.equal(405, e:request("GET", "/connect/revocation").status)
      res = e:request("POST", "/connect/revocation", { form = { client_id = ACCOUNT, client_secret = KEY } })
      assert.equal(400, res.status)
      assert.equal("invalid_request", res.json.error)
      res = e:request("POST", "/connect/revocation", { form = { token = "x", token_type_hint = "id_token",
        client_id = ACCOUNT, client_secret = KEY } })
      assert.equal(400, res.status)
      assert.equal("unsupported_token_type", res.json.error)
    end)
  end)

  describe("discovery", function()
    it("names the request's own origin and endpoints", function()
      local res = assert(e:request("GET", "/.well-known/openid-configuration"))
      assert.equal(200, res.status)
      assert.equal(e.http_url, res.json.issuer)
      assert.equal(e.http_url .. "/connect/token", res.json.token_endpoint)
      assert.equal(e.http_url .. "/connect/authorize", res.json.authorization_endpoint)
      assert.equal(e.http_url .. "/connect/revocation", res.json.revocation_endpoint)
      assert.equal(e.http_url .. "/connect/deviceauthorization", res.json.device_authorization_endpoint)
      assert.same({ "authorization_code", "client_credentials", "refresh_token",
        "urn:ietf:params:oauth:grant-type:device_code" }, res.json.grant_types_supported)
      assert.same({ "hs-code-classification", "avatax_api", "profile" }, res.json.scopes_supported)
      local n = 0
      for _ in pairs(res.json) do n = n + 1 end
      assert.equal(24, n)
      assert.is_nil(res.headers["cache-control"])
      local tls = assert(e:request("GET", "/.well-known/openid-configuration", { https = true }))
      assert.equal(e.https_url, tls.json.issuer)
      local jwks = assert(e:request("GET", res.json.jwks_uri:sub(#e.http_url + 1)))
      assert.equal('{"keys":[]}', jwks.body)
    end)

    it("says its lifetime with discovery_max_age", function()
      e:configure({ discovery_max_age = 600 })
      local res = assert(e:request("GET", "/.well-known/openid-configuration"))
      assert.equal("max-age=600", res.headers["cache-control"])
    end)
  end)
end)
