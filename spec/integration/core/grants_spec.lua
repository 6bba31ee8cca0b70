-- The grants of avalara.core against the emulator (HTTP and HTTPS): every
-- success path, every seed-003 error, argument validation before traffic,
-- authorize_url and PKCE.
local core = require "avalara.core"
local emu = require "spec.support.emulator"
local http = require "socket.http"
local ltn12 = require "ltn12"

local ID, KEY = "2000000001", "DEMO-LICENSE-KEY-0001"
local PARTNER, PSECRET = "demo-partner", "demo-partner-secret"
local REDIRECT = "http://127.0.0.1/callback"

describe("core grants", function()
  local e

  setup(function() e = emu.start() end)
  teardown(function() if e then e:stop() end end)
  before_each(function() e:reset() end)

  local function cc(extra)
    local args = { token_url = e.http_url .. "/connect/token", client_id = ID, client_secret = KEY,
                   scope = "hs-code-classification" }
    for k, v in pairs(extra or {}) do args[k] = v end
    return core.client_credentials(args)
  end

  -- GET without following redirects: the Location header.
  local function location(url)
    local _, code, headers = http.request { url = url, redirect = false, sink = ltn12.sink.null() }
    assert.equal(302, code)
    return headers.location
  end

  local function query(url, name)
    local v = url:match("[?&]" .. name .. "=([^&]*)")
    return v and (v:gsub("%%(%x%x)", function(h) return string.char(tonumber(h, 16)) end))
  end

  -- Status of an API route called with the token's Authorization header.
  local function api_status(tok)
    local _, code = http.request {
      url = e.http_url .. "/api/v2/definitions/crossborder/sections",
      headers = { authorization = tok:authorization() }, sink = ltn12.sink.null(),
    }
    return code
  end

  local function assert_oauth(err, code, description, status)
    assert.is_table(err)
    assert.equal("oauth", err.kind)
    assert.equal(code, err.code)
    assert.equal(description, err.error_description)
    assert.equal(status or 400, err.status)
    assert.is_false(err.retryable)
  end

  describe("client_credentials", function()
    it("gets a Bearer token with the credentials in the form (post) #smoke", function()
      local t, err = cc()
      assert.is_nil(err)
      assert.equal("Bearer", t:token_type())
      assert.equal("hs-code-classification", t:scope())
      assert.is_string(t:access_token())
      assert.is_nil(t:refresh_token())
      assert.equal("Bearer " .. t:access_token(), t:authorization())
      assert.is_true(t:expires_in() > 3590 and t:expires_in() <= 3600)
      assert.is_true(math.abs(t:expires_at() - os.time() - 3600) <= 2)
      assert.is_false(t:is_expired())
      assert.equal(200, api_status(t))
      assert.equal(1, e:counters().issued.connect_token)
    end)

    it("authenticates with HTTP Basic and gets the legacy avatax_api scope", function()
      local t, err = cc { auth_method = "basic", scope = "avatax_api" }
      assert.is_nil(err)
      assert.equal("avatax_api", t:scope())
      assert.equal(200, api_status(t))
    end)

    it("gets a profile token, which the API routes refuse with 403", function()
      local t = assert(cc { scope = "profile" })
      assert.equal("profile", t:scope())
      assert.equal(403, api_status(t))
    end)

    it("gets the default scope when none is asked for", function()
      local t = assert(core.client_credentials { token_url = e.http_url .. "/connect/token",
                                                 client_id = ID, client_secret = KEY })
      assert.equal("hs-code-classification", t:scope())
    end)

    it("works over HTTPS with the test CA, both auth methods", function()
      for _, method in ipairs { "post", "basic" } do
        local t, err = core.client_credentials {
          token_url = e.https_url .. "/connect/token", client_id = ID, client_secret = KEY,
          scope = "hs-code-classification", auth_method = method, cafile = e.ca_file,
        }
        assert.is_nil(err)
        assert.equal("Bearer", t:token_type())
        assert.equal(200, api_status(t))
      end
    end)

    it("form-urlencodes id and secret before base64 for Basic (RFC 6749 2.3.1)", function()
      local seen
      local t = core.client_credentials {
        token_url = "http://token.invalid/connect/token", client_id = "a b+c:d", client_secret = "s%é&=~",
        scope = "x y", auth_method = "basic",
        transport = function(req)
          seen = req
          return { status = 200, headers = { ["content-type"] = "application/json" },
                   body = '{"access_token":"AT","token_type":"Bearer"}' }
        end,
      }
      assert.equal("AT", t:access_token())
      assert.equal("POST", seen.method)
      assert.equal("Basic YStiJTJCYyUzQWQ6cyUyNSVDMyVBOSUyNiUzRH4=", seen.headers.Authorization)
      assert.equal("application/x-www-form-urlencoded", seen.headers["Content-Type"])
      assert.equal("grant_type=client_credentials&scope=x+y", seen.body)
    end)

    it("puts id and secret in the form body for post", function()
      local seen
      core.client_credentials {
        token_url = "http://token.invalid/connect/token", client_id = ID, client_secret = "a&b",
        transport = function(req)
          seen = req
          return { status = 200, headers = {}, body = '{"access_token":"AT"}' }
        end,
      }
      assert.is_nil(seen.headers.Authorization)
      assert.equal("grant_type=client_credentials&client_id=2000000001&client_secret=a%26b", seen.body)
    end)

    it("maps a wrong secret to invalid_client, not retryable, for both auth methods", function()
      local meaning = "client authentication failed: unknown client, or wrong credentials"
      for _, method in ipairs { "post", "basic" } do
        local t, err = cc { client_secret = "WRONG-KEY", auth_method = method }
        assert.is_nil(t)
        -- IdentityServer's answer: 400, no error_description
        assert_oauth(err, "invalid_client", nil, 400)
        assert.equal(meaning, err.message)
        -- the code shows once in tostring, not repeated by the message
        assert.equal("avalara: oauth error (status 400) invalid_client: " .. meaning,
          tostring(err):gsub(" %[request id .*%]$", ""), nil)
      end
    end)

    it("maps an unknown scope to invalid_scope", function()
      local t, err = cc { scope = "openid" }
      assert.is_nil(t)
      assert_oauth(err, "invalid_scope", "requested scope is not allowed")
    end)

    it("gives a transport error when nothing listens", function()
      local t, err = core.client_credentials {
        token_url = "http://127.0.0.1:9/connect/token", client_id = ID, client_secret = KEY,
      }
      assert.is_nil(t)
      assert.equal("transport", err.kind)
    end)
  end)

  describe("Identity authorization_code with PKCE", function()
    local function authorize(challenge, state)
      local url = core.authorize_url {
        url = e.http_url .. "/connect/authorize", client_id = ID, redirect_uri = REDIRECT,
        scope = "hs-code-classification", state = state, code_challenge = challenge,
      }
      return location(url)
    end

    it("exchanges the code with its verifier and refreshes with the rotated refresh token", function()
      local verifier, challenge = core.pkce()
      local loc = authorize(challenge, "st ate/1")
      assert.equal(REDIRECT, loc:match("^[^?]*"))
      assert.equal("st ate/1", query(loc, "state"))
      local t, err = core.authorization_code {
        token_url = e.http_url .. "/connect/token", client_id = ID, client_secret = KEY,
        code = query(loc, "code"), redirect_uri = REDIRECT, code_verifier = verifier,
      }
      assert.is_nil(err)
      assert.equal("hs-code-classification", t:scope())
      local refresh1, access1 = t:refresh_token(), t:access_token()
      assert.is_string(refresh1)
      assert.equal(200, api_status(t))

      assert.equal(t, t:refresh())
      assert.not_equal(access1, t:access_token())
      assert.not_equal(refresh1, t:refresh_token())
      assert.equal(200, api_status(t))

      -- the grant function with the token's current refresh token
      local t2, err2 = core.refresh_token {
        token_url = e.http_url .. "/connect/token", client_id = ID, client_secret = KEY,
        refresh_token = t:refresh_token(),
      }
      assert.is_nil(err2)
      assert.equal(200, api_status(t2))
      -- the used one is spent
      local t3, err3 = core.refresh_token {
        token_url = e.http_url .. "/connect/token", client_id = ID, client_secret = KEY,
        refresh_token = refresh1,
      }
      assert.is_nil(t3)
      assert.equal("oauth", err3.kind)
      assert.equal("invalid_grant", err3.code)
    end)

    it("refuses a wrong verifier with invalid_grant", function()
      local _, challenge = core.pkce()
      local other = core.pkce()
      local loc = authorize(challenge)
      local t, err = core.authorization_code {
        token_url = e.https_url .. "/connect/token", cafile = e.ca_file, client_id = ID,
        client_secret = KEY, code = query(loc, "code"), redirect_uri = REDIRECT, code_verifier = other,
      }
      assert.is_nil(t)
      assert_oauth(err, "invalid_grant", "code_verifier does not match the code_challenge")
    end)
  end)

  describe("2012 OAuth", function()
    local function oauth(path) return e.http_url .. "/oauth/" .. path end

    local function code()
      local loc = location(core.authorize_url {
        url = oauth("authorize"), client_id = PARTNER, redirect_uri = REDIRECT, state = "s1",
      })
      assert.equal("s1", query(loc, "state"))
      return query(loc, "code")
    end

    local function exchange(c, extra)
      local args = { token_url = oauth("access_token"), client_id = PARTNER, client_secret = PSECRET,
                     code = c, redirect_uri = REDIRECT }
      for k, v in pairs(extra or {}) do args[k] = v end
      return core.authorization_code(args)
    end

    it("generate_token self-grants an avalara token that never expires in practice", function()
      local t, err = core.generate_token { url = oauth("generate_token"), client_id = PARTNER,
                                           client_secret = PSECRET }
      assert.is_nil(err)
      assert.equal("avalara", t:token_type())
      assert.equal("CompanyUser", t:scope())
      assert.is_string(t:refresh_token())
      assert.equal(253402300799, t:expires_at()) -- 9999-12-31T23:59:59Z
      assert.is_false(t:is_expired(10 * 365 * 86400))
      assert.equal(200, api_status(t))
    end)

    it("generate_token works over HTTPS", function()
      local t, err = core.generate_token { url = e.https_url .. "/oauth/generate_token",
                                           client_id = PARTNER, client_secret = PSECRET,
                                           cafile = e.ca_file }
      assert.is_nil(err)
      assert.equal("CompanyUser", t:scope())
    end)

    it("authorize, then access_token, then single-use refresh", function()
      local t, err = exchange(code())
      assert.is_nil(err)
      assert.equal("avalara", t:token_type())
      local old_refresh, old_access = t:refresh_token(), t:access_token()
      assert.equal(t, t:refresh())
      assert.not_equal(old_refresh, t:refresh_token())
      assert.not_equal(old_access, t:access_token())
      assert.equal(200, api_status(t))
      local again, err2 = core.refresh_token { token_url = oauth("access_token"), client_id = PARTNER,
                                               client_secret = PSECRET, refresh_token = old_refresh }
      assert.is_nil(again)
      assert_oauth(err2, "invalid_token", "token revoked")
      assert.equal("token revoked", err2.message)
    end)

    it("parses the seed's verbatim sample body (trailing comma)", function()
      e:configure { legacy_sample_body = true }
      local t, err = core.generate_token { url = oauth("generate_token"), client_id = PARTNER,
                                           client_secret = PSECRET }
      assert.is_nil(err)
      assert.equal("a136c4debbc84be7911203cbbef8b629", t:access_token())
      assert.equal("71b5389c06b54f91b40135f8e0f39dd6", t:refresh_token())
      assert.equal("avalara", t:token_type())
      assert.equal(253402300799, t:expires_at())
    end)

    -- Seed 003, scenario by scenario, each through a grant function.
    local scenarios = {
      { "the client_id is not supplied", "invalid_request", "Authorize request with invalid client_id:  ",
        function() return exchange(code(), { client_id = "" }) end },
      { "the client_secret does not match", "invalid_request", "Authorize request with invalid client_secret:  ",
        function() return exchange(code(), { client_secret = "not-the-secret" }) end },
      { "the grant_type is missing (a self-grant posted to access_token)", "unsupported_grant_type",
        "This access grant type is not supported by this server.",
        function() return core.generate_token { url = oauth("access_token"), client_id = PARTNER,
                                                client_secret = PSECRET } end },
      { "the code is empty", "invalid_grant", "Value cannot be empty.\r\nParameter name: accessGrantId",
        function() return exchange("") end },
      { "the refresh_token is empty", "invalid_token",
        "value argument cannot be empty.\r\nParameter name: RefreshToken",
        function() return core.refresh_token { token_url = oauth("access_token"), client_id = PARTNER,
                                               client_secret = PSECRET, refresh_token = "" } end },
      { "the refresh_token is not valid", "invalid_token", "access_denied",
        function() return core.refresh_token { token_url = oauth("access_token"), client_id = PARTNER,
                                               client_secret = PSECRET, refresh_token = "nope" } end },
      { "the code is not valid", "invalid_grant", "access_denied",
        function() return exchange("0123456789abcdef") end },
      { "the refresh_token was revoked", "invalid_token", "token revoked",
        function()
          local t = assert(exchange(code()))
          local rt = t:refresh_token()
          assert(t:revoke())
          return core.refresh_token { token_url = oauth("access_token"), client_id = PARTNER,
                                      client_secret = PSECRET, refresh_token = rt }
        end },
    }
    for _, s in ipairs(scenarios) do
      it("maps the seed-003 error when " .. s[1], function()
        local t, err = s[4]()
        assert.is_nil(t)
        assert_oauth(err, s[2], s[3])
        assert.equal((s[3]:gsub("\r\n", " "):gsub("%s+$", "")), err.message)
        assert.truthy(err.body:find("^error=" .. s[2]))
        assert.truthy(tostring(err):find(s[2], 1, true))
      end)
    end
    it("readable message for the code-missing description", function()
      local _, err = exchange("")
      assert.equal("Value cannot be empty. Parameter name: accessGrantId", err.message)
    end)
  end)

  describe("revoke", function()
    it("revokes an Identity access token (token:revoke), then the API refuses it", function()
      local t = assert(cc())
      assert.equal(200, api_status(t))
      assert.is_true(t:revoke())
      assert.equal(401, api_status(t))
      assert.equal(1, e:counters().routes.connect_revocation)
    end)

    it("revokes with core.revoke at /connect/revocation over HTTPS with Basic", function()
      local t = assert(cc())
      local ok, err = core.revoke { url = e.https_url .. "/connect/revocation", cafile = e.ca_file,
                                    client_id = ID, client_secret = KEY, token = t:access_token(),
                                    token_type_hint = "access_token", auth_method = "basic" }
      assert.is_nil(err)
      assert.is_true(ok)
      assert.equal(401, api_status(t))
    end)

    it("revokes a 2012 authorization at /oauth/revoke (core.revoke): access and refresh die", function()
      local t = assert(core.generate_token { url = e.http_url .. "/oauth/generate_token",
                                             client_id = PARTNER, client_secret = PSECRET })
      assert.is_true(core.revoke { url = e.http_url .. "/oauth/revoke", client_id = PARTNER,
                                   client_secret = PSECRET, token = t:access_token() })
      assert.equal(401, api_status(t))
      local ok, err = t:refresh()
      assert.is_nil(ok)
      assert_oauth(err, "invalid_token", "token revoked")
    end)

    it("reports a refused revocation as an oauth error", function()
      local ok, err = core.revoke { url = e.http_url .. "/connect/revocation", client_id = ID,
                                    client_secret = "WRONG", token = "whatever" }
      assert.is_nil(ok)
      assert_oauth(err, "invalid_client", nil, 400)
    end)

    it("treats any 200 as success, whatever the body", function()
      local ok = core.revoke { url = "http://revoke.invalid/oauth/revoke", client_id = "c",
                               client_secret = "s", token = "t",
                               transport = function() return { status = 200, headers = {}, body = "<html>" } end }
      assert.is_true(ok)
    end)
  end)

  describe("argument validation", function()
    local cases = {
      { "client_credentials", { client_id = ID, client_secret = KEY }, "token_url" },
      { "client_credentials", { token_url = "http://127.0.0.1:1/connect/token", client_secret = KEY }, "client_id" },
      { "client_credentials", { token_url = "http://127.0.0.1:1/connect/token", client_id = ID }, "client_secret" },
      { "client_credentials", { token_url = "http://127.0.0.1:1/connect/token", client_id = ID, client_secret = KEY,
                                scope = {} }, "scope" },
      { "client_credentials", { token_url = "http://127.0.0.1:1/connect/token", client_id = ID, client_secret = KEY,
                                auth_method = "digest" }, "auth_method" },
      { "client_credentials", { token_url = "http://127.0.0.1:1/connect/token", client_id = ID, client_secret = KEY,
                                timeout = "soon" }, "timeout" },
      { "authorization_code", { token_url = "http://127.0.0.1:1/t", client_id = ID, client_secret = KEY,
                                redirect_uri = REDIRECT }, "code" },
      { "authorization_code", { token_url = "http://127.0.0.1:1/t", client_id = ID, client_secret = KEY, code = "c" }, "redirect_uri" },
      { "authorization_code", { token_url = "http://127.0.0.1:1/t", client_id = ID, client_secret = KEY, code = "c",
                                redirect_uri = REDIRECT, code_verifier = true }, "code_verifier" },
      { "refresh_token", { token_url = "http://127.0.0.1:1/t", client_id = ID, client_secret = KEY }, "refresh_token" },
      { "generate_token", { client_id = PARTNER, client_secret = PSECRET }, "url" },
      { "revoke", { url = "http://127.0.0.1:1/r", client_id = ID, client_secret = KEY }, "token" },
      { "revoke", { client_id = ID, client_secret = KEY, token = "t" }, "url" },
      { "authorize_url", { url = "u", redirect_uri = REDIRECT }, "client_id" },
      { "authorize_url", { url = "u", client_id = ID }, "redirect_uri" },
      { "authorize_url", { client_id = ID, redirect_uri = REDIRECT }, "url" },
      { "authorize_url", { url = "u", client_id = ID, redirect_uri = REDIRECT, state = {} }, "state" },
    }
    for _, c in ipairs(cases) do
      it(c[1] .. " raises naming '" .. c[3] .. "' before any traffic", function()
        local before = e:counters().requests
        local ok, msg = pcall(core[c[1]], c[2])
        assert.is_false(ok)
        assert.truthy(tostring(msg):find(c[3], 1, true), msg)
        assert.equal(before, e:counters().requests)
      end)
    end

    it("raises when the argument is not a table", function()
      for _, name in ipairs { "client_credentials", "authorization_code", "refresh_token",
                              "generate_token", "revoke", "authorize_url" } do
        local ok, msg = pcall(core[name], "http://x")
        assert.is_false(ok)
        assert.truthy(msg:find("table expected", 1, true))
        assert.truthy(msg:find(name, 1, true))
      end
    end)

    it("takes numbers for string fields (account IDs)", function()
      local t, err = cc { client_id = 2000000001 }
      assert.is_nil(err)
      assert.equal("Bearer", t:token_type())
    end)
  end)

  describe("authorize_url", function()
    it("always asks for a code and percent-encodes every value", function()
      local url = core.authorize_url { url = "https://id.example/connect/authorize", client_id = "a b",
                                       redirect_uri = "http://127.0.0.1/cb?x=1&y=2", scope = "openid profile",
                                       state = "s&t=~" }
      assert.equal("https://id.example/connect/authorize?response_type=code&client_id=a%20b"
        .. "&redirect_uri=http%3A%2F%2F127.0.0.1%2Fcb%3Fx%3D1%26y%3D2&scope=openid%20profile&state=s%26t%3D~", url)
    end)

    it("appends to a URL that already has a query, and adds S256 with a challenge", function()
      local url = core.authorize_url { url = "http://x/oauth/authorize?tenant=1", client_id = "c",
                                       redirect_uri = "r", code_challenge = "E9Mel-_" }
      assert.equal("http://x/oauth/authorize?tenant=1&response_type=code&client_id=c&redirect_uri=r"
        .. "&code_challenge=E9Mel-_&code_challenge_method=S256", url)
      assert.equal("http://x/a?response_type=code&client_id=c&redirect_uri=r",
        core.authorize_url { url = "http://x/a?", client_id = "c", redirect_uri = "r" })
    end)

    it("sends no challenge method without a challenge", function()
      local url = core.authorize_url { url = "http://x/a", client_id = "c", redirect_uri = "r" }
      assert.is_nil(url:find("code_challenge", 1, true))
    end)
  end)

  describe("pkce", function()
    it("matches RFC 7636 appendix B", function()
      local v, c = core.pkce("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk")
      assert.equal("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk", v)
      assert.equal("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM", c)
    end)

    it("hashes across SHA-256 block and padding boundaries (vectors from openssl dgst)", function()
      local vectors = {
        [("a"):rep(55)] = "n0OQ-NMMLdkuyfCVtl4rmumwqSWlJY4kHJ8ekQ9zQxg",
        [("b"):rep(56)] = "pfxuIDpMK2V9DRU4hZMkFLL_xqk_D4v4sxgzFeWnISw",
        [("c"):rep(64)] = "UrZBnSe9f1R87juS-MF6kIuKSWAey-wWHlAw3h3-ngo",
        [("0123456789ABCDEFabcdef-._~"):rep(5):sub(1, 128)] = "qFLpbUWrEV41InbKjDEV7uNwwXrrpBVgMAF2LJgt7n0",
      }
      for verifier, challenge in pairs(vectors) do
        assert.equal(challenge, select(2, core.pkce(verifier)))
      end
    end)

    it("makes fresh 43-character base64url verifiers whose challenge is S256 of them", function()
      local seen = {}
      for _ = 1, 20 do
        local v, c = core.pkce()
        assert.equal(43, #v)
        assert.truthy(v:match("^[%w%-_]+$"))
        assert.equal(c, select(2, core.pkce(v)))
        assert.is_nil(seen[v])
        seen[v] = true
      end
    end)

    it("rejects verifiers RFC 7636 forbids", function()
      assert.has_error(function() core.pkce(("a"):rep(42)) end)
      assert.has_error(function() core.pkce(("a"):rep(129)) end)
      assert.has_error(function() core.pkce(("a"):rep(50) .. "+") end)
    end)
  end)
end)
