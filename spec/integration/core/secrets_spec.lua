-- Secrets never leak: every error path of the grants and token methods that
-- can be driven (OAuth errors, HTTP faults, TLS, timeouts, refused
-- connections, servers that echo what they were sent, raw or in another
-- encoding: form- or percent-encoded, JSON- or HTML-escaped) is checked for
-- the client secrets, access tokens and refresh tokens in tostring(err),
-- err.message, err.body, err.error_description, err.error_uri,
-- err.request_id and in tostring(token). Failure messages name the secret,
-- never print it.
local core = require "avalara.core"
local emu = require "spec.support.emulator"
local hostile = require "spec.support.hostile"
local http = require "socket.http"
local ltn12 = require "ltn12"

local ID, KEY = "2000000001", "DEMO-LICENSE-KEY-0001"
local PARTNER, PSECRET = "demo-partner", "demo-partner-secret"
local REDIRECT = "http://127.0.0.1/callback"

local function assert_clean(label, err, secrets)
  assert(type(err) == "table", label .. ": expected an error table, got " .. type(err))
  local fields = {
    ["tostring(err)"] = tostring(err), message = err.message, body = err.body,
    error_description = err.error_description, error_uri = err.error_uri, code = err.code,
  }
  for fname, text in pairs(fields) do
    if type(text) == "string" then
      for sname, secret in pairs(secrets) do
        assert(not text:find(secret, 1, true), label .. ": " .. fname .. " holds the " .. sname)
      end
    end
  end
end

local function assert_token_clean(label, t, secrets)
  local s = tostring(t)
  for sname, secret in pairs(secrets) do
    assert(not s:find(secret, 1, true), label .. ": tostring(token) holds the " .. sname)
  end
end

describe("core secrets", function()
  local e

  setup(function() e = emu.start() end)
  teardown(function() if e then e:stop() end end)
  before_each(function() e:reset() end)

  local function token_url() return e.http_url .. "/connect/token" end
  local function oauth(path) return e.http_url .. "/oauth/" .. path end

  local function cc(extra)
    local args = { token_url = token_url(), client_id = ID, client_secret = KEY,
                   scope = "hs-code-classification" }
    for k, v in pairs(extra or {}) do args[k] = v end
    return core.client_credentials(args)
  end

  local function code_for(url, client_id, challenge)
    local auth = core.authorize_url { url = url, client_id = client_id, redirect_uri = REDIRECT,
                                      code_challenge = challenge }
    local _, status, headers = http.request { url = auth, redirect = false, sink = ltn12.sink.null() }
    assert.equal(302, status)
    return (headers.location:match("[?&]code=([^&]*)"))
  end

  -- Identity tokens with a spent refresh token, from the PKCE flow.
  local function identity_pair()
    local verifier, challenge = core.pkce()
    local t = assert(core.authorization_code {
      token_url = token_url(), client_id = ID, client_secret = KEY, redirect_uri = REDIRECT,
      code = code_for(e.http_url .. "/connect/authorize", ID, challenge), code_verifier = verifier,
    })
    local spent_refresh, old_access = t:refresh_token(), t:access_token()
    assert(t:refresh())
    return t, { ["license key"] = KEY, ["spent refresh token"] = spent_refresh,
                ["old access token"] = old_access, ["access token"] = t:access_token(),
                ["refresh token"] = t:refresh_token(), ["PKCE verifier"] = verifier }, spent_refresh
  end

  describe("Identity grant errors", function()
    it("invalid_scope and invalid_client, post and basic", function()
      for _, method in ipairs { "post", "basic" } do
        local _, err = cc { scope = "openid", auth_method = method }
        assert.equal("invalid_scope", err.code)
        assert_clean("invalid_scope/" .. method, err, { ["license key"] = KEY })
        -- a real key sent for the wrong account
        _, err = cc { client_id = "2000000002", auth_method = method }
        assert.equal("invalid_client", err.code)
        assert_clean("invalid_client/" .. method, err, { ["license key"] = KEY })
      end
    end)

    it("a spent refresh token, a used code and a wrong verifier", function()
      local t, secrets, spent = identity_pair()
      assert_token_clean("pkce token", t, secrets)
      local _, err = core.refresh_token { token_url = token_url(), client_id = ID, client_secret = KEY,
                                          refresh_token = spent }
      assert.equal("invalid_grant", err.code)
      assert_clean("spent refresh", err, secrets)

      local verifier, challenge = core.pkce()
      local c = code_for(e.http_url .. "/connect/authorize", ID, challenge)
      local wrong = core.pkce()
      _, err = core.authorization_code { token_url = token_url(), client_id = ID, client_secret = KEY,
                                         redirect_uri = REDIRECT, code = c, code_verifier = wrong }
      assert.equal("invalid_grant", err.code)
      assert_clean("wrong verifier", err, { ["license key"] = KEY, verifier = wrong, code = c })
      _, err = core.authorization_code { token_url = token_url(), client_id = ID, client_secret = KEY,
                                         redirect_uri = REDIRECT, code = c, code_verifier = verifier }
      assert.equal("invalid_grant", err.code)
      assert_clean("used code", err, { ["license key"] = KEY, verifier = verifier, code = c })
    end)

    it("a refused revocation", function()
      local t = assert(cc())
      local _, err = core.revoke { url = e.http_url .. "/connect/revocation", client_id = ID,
                                   client_secret = "WRONG-" .. KEY, token = t:access_token() }
      assert.equal("invalid_client", err.code)
      assert_clean("revocation", err, { ["access token"] = t:access_token(), ["sent secret"] = "WRONG-" .. KEY })
    end)
  end)

  describe("2012 grant errors (seed 003)", function()
    it("every scenario", function()
      local t = assert(core.generate_token { url = oauth("generate_token"), client_id = PARTNER,
                                             client_secret = PSECRET })
      local rt, at = t:refresh_token(), t:access_token()
      assert(t:revoke())
      local secrets = { ["partner secret"] = PSECRET, ["refresh token"] = rt, ["access token"] = at }
      assert_token_clean("2012 token", t, secrets)
      local calls = {
        function() return core.authorization_code { token_url = oauth("access_token"), client_id = "",
          client_secret = PSECRET, code = code_for(oauth("authorize"), PARTNER), redirect_uri = REDIRECT } end,
        function() return core.authorization_code { token_url = oauth("access_token"), client_id = PARTNER,
          client_secret = PSECRET .. "x", code = code_for(oauth("authorize"), PARTNER), redirect_uri = REDIRECT } end,
        function() return core.generate_token { url = oauth("access_token"), client_id = PARTNER,
          client_secret = PSECRET } end,
        function() return core.authorization_code { token_url = oauth("access_token"), client_id = PARTNER,
          client_secret = PSECRET, code = "", redirect_uri = REDIRECT } end,
        function() return core.refresh_token { token_url = oauth("access_token"), client_id = PARTNER,
          client_secret = PSECRET, refresh_token = "" } end,
        function() return core.refresh_token { token_url = oauth("access_token"), client_id = PARTNER,
          client_secret = PSECRET, refresh_token = at } end,
        function() return core.authorization_code { token_url = oauth("access_token"), client_id = PARTNER,
          client_secret = PSECRET, code = "feedfacefeedface", redirect_uri = REDIRECT } end,
        function() return core.refresh_token { token_url = oauth("access_token"), client_id = PARTNER,
          client_secret = PSECRET, refresh_token = rt } end,
        function() return t:refresh() end,
      }
      local codes = {}
      for i, call in ipairs(calls) do
        local ok, err = call()
        assert.is_nil(ok)
        assert.equal("oauth", err.kind)
        codes[#codes + 1] = err.code
        assert_clean("scenario " .. i, err, secrets)
      end
      assert.same({ "invalid_request", "invalid_request", "unsupported_grant_type", "invalid_grant",
                    "invalid_token", "invalid_token", "invalid_grant", "invalid_token", "invalid_token" }, codes)
    end)
  end)

  describe("faults", function()
    local faults = {
      { "500", "http" }, { "502", "http" }, { "503", "http" }, { "429", "http" },
      { "reset", "transport", 2 }, { "truncated", "parse" }, { "invalid_json", "parse" }, { "html", "http" },
    }
    for _, f in ipairs(faults) do
      it("the " .. f[1] .. " fault on the token endpoints", function()
        for _, route in ipairs { "connect_token", "oauth_generate_token" } do
          -- libcurl retries once when a reused connection drops before any answer
          e:fault(route, f[1], f[3] or 1)
          local t, err
          if route == "connect_token" then
            t, err = cc()
          else
            t, err = core.generate_token { url = oauth("generate_token"), client_id = PARTNER,
                                           client_secret = PSECRET }
          end
          assert.is_nil(t)
          assert.equal(f[2], err.kind)
          assert_clean(f[1] .. " on " .. route, err, { ["license key"] = KEY, ["partner secret"] = PSECRET })
        end
      end)
    end

    it("a body over max_body", function()
      e:fault("connect_token", "oversized", 1, { size = 200000 })
      local t, err = cc { max_body = 65536 }
      assert.is_nil(t)
      assert.is_string(err.kind)
      assert_clean("oversized", err, { ["license key"] = KEY })
    end)

    it("a stalled token endpoint times out", function()
      e:fault("connect_token", "stall", 1, { stall_seconds = 3 })
      local started = os.time()
      local t, err = cc { timeout = 0.5 }
      assert.is_nil(t)
      assert.equal("timeout", err.kind)
      assert.is_true(os.time() - started <= 2)
      assert_clean("stall", err, { ["license key"] = KEY })
    end)

    it("a failing refresh of a live token", function()
      local t = assert(cc())
      local secrets = { ["license key"] = KEY, ["access token"] = t:access_token() }
      for _, kind in ipairs { "503", "invalid_json", "reset" } do
        e:fault("connect_token", kind, 2)
        local ok, err = t:refresh()
        assert.is_nil(ok)
        assert_clean("refresh/" .. kind, err, secrets)
      end
      assert_token_clean("live token", t, secrets)
    end)
  end)

  describe("transport failures", function()
    it("TLS without the test CA", function()
      local t, err = core.client_credentials { token_url = e.https_url .. "/connect/token",
                                               client_id = ID, client_secret = KEY }
      assert.is_nil(t)
      assert.equal("tls", err.kind)
      assert_clean("tls", err, { ["license key"] = KEY })
    end)

    it("a refused connection", function()
      local t, err = core.client_credentials { token_url = "http://127.0.0.1:9/connect/token",
                                               client_id = ID, client_secret = KEY }
      assert.is_nil(t)
      assert.equal("transport", err.kind)
      assert_clean("refused", err, { ["license key"] = KEY })
    end)
  end)

  describe("a success response cut short", function()
    -- A one-shot server in another process: reads one request, answers 200
    -- with a Content-Length promising more than it sends, and closes.
    local function truncating_server(body)
      local script = string.format([==[
        local socket = require "socket"
        local srv = assert(socket.bind("127.0.0.1", 0))
        local _, port = srv:getsockname()
        print(port); io.stdout:flush()
        srv:settimeout(10)
        local c = srv:accept()
        if c then
          c:settimeout(5)
          local len = 0
          repeat
            local line = c:receive("*l")
            local n = line and line:lower():match("^content%%-length:%%s*(%%d+)")
            if n then len = tonumber(n) end
          until not line or line == ""
          if len > 0 then c:receive(len) end
          c:send("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 400\r\n"
            .. "Connection: close\r\n\r\n" .. %q)
          c:close()
        end]==], body)
      local p = assert(io.popen("lua5.4 -e '" .. script:gsub("'", "'\\''") .. "'", "r"))
      return p, tonumber(p:read("*l"))
    end

    it("never keeps a body that carries a token", function()
      local p, port = truncating_server('{"access_token":"AT-TRUNC-777","refresh_token":"RT-TRUNC-888","exp')
      local t, err = core.client_credentials { token_url = "http://127.0.0.1:" .. port .. "/connect/token",
                                               client_id = ID, client_secret = KEY }
      p:close()
      assert.is_nil(t)
      assert.equal("parse", err.kind)
      assert.is_nil(err.body)
      assert.truthy(err.message:find("body withheld", 1, true))
      assert_clean("truncated token", err, { ["license key"] = KEY, ["access token"] = "AT-TRUNC-777",
                                             ["refresh token"] = "RT-TRUNC-888" })
    end)
  end)

  describe("servers that echo", function()
    local function echo(status, content_type, prefix)
      return function(req)
        return { status = status, headers = { ["content-type"] = content_type },
                 body = prefix .. req.body .. " " .. tostring(req.headers.Authorization) }
      end
    end

    it("redacts what a 400 echoes back, in the body and the description", function()
      for _, method in ipairs { "post", "basic" } do
        local t, err = core.refresh_token {
          token_url = "http://id.invalid/connect/token", client_id = ID, client_secret = KEY,
          refresh_token = "RT-SECRET-123", auth_method = method,
          transport = function(req)
            return { status = 400, headers = { ["content-type"] = "application/json" },
                     body = '{"error":"invalid_grant","error_description":"bad ' .. req.body
                       .. '","error_uri":"http://x/?secret=' .. KEY .. '","echo":"'
                       .. tostring(req.headers.Authorization) .. '"}' }
          end,
        }
        assert.is_nil(t)
        assert.equal("invalid_grant", err.code)
        assert.truthy(err.body:find("[REDACTED]", 1, true))
        assert_clean("echo/" .. method, err, {
          ["license key"] = KEY, ["refresh token"] = "RT-SECRET-123",
          ["Basic credentials"] = "MjAwMDAwMDAwMTpERU1PLUxJQ0VOU0UtS0VZLTAwMDE=",
        })
      end
    end)

    it("withholds a success body that carries tokens but does not parse", function()
      local t, err = cc { transport = echo(200, "application/json",
                                           '{"access_token":"AT-SECRET-999","expires_in":') }
      assert.is_nil(t)
      assert.equal("parse", err.kind)
      assert.is_nil(err.body)
      assert_clean("withheld", err, { ["license key"] = KEY, ["access token"] = "AT-SECRET-999" })
    end)

    it("redacts a transport function's error message", function()
      local t, err = cc { transport = function(req) return nil, "failed to send " .. req.body end }
      assert.is_nil(t)
      assert.equal("transport", err.kind)
      assert_clean("transport function", err, { ["license key"] = KEY })
    end)
  end)

  describe("servers that echo a secret in another encoding (repro sec.lua)", function()
    local h
    setup(function() h = hostile.start() end)
    teardown(function() if h then h:stop() end end)

    local SECRETS = { 's3cr+t/with=chars&more', 'pa"ss\\word 50% off', "x+y/z==" }

    local assert_no_form = hostile.assert_no_form

    for _, route in ipairs { "/echo", "/echo-decoded", "/echo-html" } do
      for _, method in ipairs { "post", "basic" } do
        it("a client secret, " .. method .. ", echoed by " .. route, function()
          for _, secret in ipairs(SECRETS) do
            local t, err = core.client_credentials { token_url = h.url .. route, client_id = "id",
              client_secret = secret, auth_method = method }
            assert.is_nil(t)
            assert.is_truthy(err.body or err.error_description, route)
            assert_no_form(route .. "/" .. method, err, secret)
          end
        end)
      end
      it("a refresh token echoed by " .. route, function()
        for _, secret in ipairs(SECRETS) do
          local _, err = core.refresh_token { token_url = h.url .. route, client_id = "id",
            client_secret = "CLIENT-SECRET-123", refresh_token = secret }
          assert_no_form(route, err, secret)
          assert_no_form(route, err, "CLIENT-SECRET-123")
        end
      end)
    end

    it("an access token echoed by the API in its error, its description and a header", function()
      local token = "tok/en+with=sym&bols"
      local _, err = core.request { url = h.url .. "/api-echo", token = token }
      assert.equal("oauth", err.kind)
      assert.equal(37, err.number)
      assert_no_form("api-echo", err, token)
      assert_no_form("api-echo", err, "Bearer " .. token)
    end)
  end)
end)
