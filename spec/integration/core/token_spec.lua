-- Token objects (avalara.token): accessors, expiry, refresh in place,
-- revoke endpoints, tostring and close semantics.
local core = require "avalara.core"
local emu = require "spec.support.emulator"
local http = require "socket.http"
local socket = require "socket"
local ltn12 = require "ltn12"

local ID, KEY = "2000000001", "DEMO-LICENSE-KEY-0001"
local PARTNER, PSECRET = "demo-partner", "demo-partner-secret"

-- A transport function answering from a list of responses, recording requests.
local function scripted(responses)
  local log = {}
  local function transport(req)
    log[#log + 1] = req
    local r = responses[#log]
    if type(r) == "function" then return r(req) end
    return r
  end
  return transport, log
end

local function json(status, body)
  return { status = status, headers = { ["content-type"] = "application/json" }, body = body }
end

local function offline(extra)
  local args = { token_url = "http://id.invalid/connect/token", client_id = "c", client_secret = "sekrit-1" }
  for k, v in pairs(extra) do args[k] = v end
  return core.client_credentials(args)
end

describe("core token objects", function()
  local e

  setup(function() e = emu.start() end)
  teardown(function() if e then e:stop() end end)
  before_each(function() e:reset() end)

  local function cc(extra)
    local args = { token_url = e.http_url .. "/connect/token", client_id = ID, client_secret = KEY,
                   scope = "hs-code-classification" }
    for k, v in pairs(extra or {}) do args[k] = v end
    return assert(core.client_credentials(args))
  end

  local function api_status(tok)
    local _, code = http.request {
      url = e.http_url .. "/api/v2/definitions/crossborder/sections",
      headers = { authorization = tok:authorization() }, sink = ltn12.sink.null(),
    }
    return code
  end

  describe("expiry", function()
    it("expires after a short TTL, with leeway counted ahead", function()
      e:configure { token_ttl = 2 }
      local t = cc()
      assert.is_true(t:expires_in() <= 2)
      assert.is_false(t:is_expired())
      assert.is_true(t:is_expired(5))
      assert.is_false(t:is_expired(-100))
      socket.sleep(2.2)
      assert.is_true(t:is_expired())
      assert.equal(0, t:expires_in())
      assert.equal(401, api_status(t))
      -- refresh() repeats the grant and the token is good again
      e:configure { token_ttl = 3600 }
      assert.equal(t, t:refresh())
      assert.is_false(t:is_expired())
      assert.equal(200, api_status(t))
    end)

    it("has no expiry without expires_in", function()
      local t = offline { transport = scripted { json(200, '{"access_token":"AT","token_type":"Bearer"}') } }
      assert.is_nil(t:expires_at())
      assert.is_nil(t:expires_in())
      assert.is_false(t:is_expired(1e9))
      assert.equal("avalara.token (Bearer, no expiry)", tostring(t))
    end)

    it("clamps an absurd expires_in to the end of year 9999 instead of overflowing", function()
      local t = offline { transport = scripted { json(200, '{"access_token":"AT","expires_in":1e300}') } }
      assert.equal(253402300800, t:expires_at())
      -- 400 digits in a string overflow a double: unreadable, not infinite
      local _, err = core.client_credentials { token_url = "http://x/connect/token", client_id = "id",
        client_secret = "SECRET-1", transport = scripted { json(200, '{"access_token":"AT","expires_in":"'
          .. ("9"):rep(400) .. '"}') } }
      assert.equal("parse", err.kind)
      assert.truthy(err.message:find("unreadable expires_in", 1, true), err.message)
      assert.is_false(t:is_expired(1e9))
      assert.truthy(tostring(t):find("^avalara%.token %(no type, expires "))
    end)

    it("reads expires_in given as a numeric string", function()
      local t = offline { transport = scripted { json(200, '{"access_token":"AT","expires_in":"120"}') } }
      assert.is_true(t:expires_in() > 110 and t:expires_in() <= 120)
    end)
  end)

  describe("refresh", function()
    it("repeats client_credentials with the same scope, auth method and options (HTTPS)", function()
      local t = cc { token_url = e.https_url .. "/connect/token", cafile = e.ca_file,
                     auth_method = "basic", scope = "avatax_api" }
      local first = t:access_token()
      assert.equal(t, t:refresh())
      assert.not_equal(first, t:access_token())
      assert.equal("avatax_api", t:scope())
      assert.equal("Bearer " .. t:access_token(), t:authorization())
      assert.equal(200, api_status(t))
      assert.equal(2, e:counters().issued.connect_token)
    end)

    it("sends the original request again: same grant, scope, Basic header", function()
      local transport, log = scripted {
        json(200, '{"access_token":"AT1","expires_in":60}'),
        json(200, '{"access_token":"AT2","expires_in":60}'),
      }
      local t = offline { scope = "a b", auth_method = "basic", transport = transport }
      t:refresh()
      assert.equal("AT2", t:access_token())
      assert.equal(log[1].body, log[2].body)
      assert.equal(log[1].url, log[2].url)
      assert.equal(log[1].headers.Authorization, log[2].headers.Authorization)
    end)

    it("uses the refresh token when there is one, keeping it when not rotated", function()
      local transport, log = scripted {
        json(200, '{"access_token":"AT1","refresh_token":"RT1"}'),
        json(200, '{"access_token":"AT2","scope":"narrow"}'),
        json(200, '{"access_token":"AT3","refresh_token":"RT3"}'),
      }
      local t = offline { transport = transport }
      t:refresh()
      assert.equal("grant_type=refresh_token&refresh_token=RT1&client_id=c&client_secret=sekrit-1", log[2].body)
      assert.equal("AT2", t:access_token())
      assert.equal("RT1", t:refresh_token())
      assert.equal("narrow", t:scope())
      t:refresh()
      assert.equal("grant_type=refresh_token&refresh_token=RT1&client_id=c&client_secret=sekrit-1", log[3].body)
      assert.equal("RT3", t:refresh_token())
    end)

    it("leaves the token as it was when the refresh fails", function()
      local transport = scripted {
        json(200, '{"access_token":"AT1","refresh_token":"RT1","expires_in":60,"scope":"s1"}'),
        { status = 503, headers = { ["retry-after"] = "7" }, body = "busy" },
      }
      local t = offline { transport = transport }
      local at = t:expires_at()
      local ok, err = t:refresh()
      assert.is_nil(ok)
      assert.equal("http", err.kind)
      assert.equal(503, err.status)
      assert.is_true(err.retryable)
      assert.equal(7, err.retry_after)
      assert.equal("AT1", t:access_token())
      assert.equal("RT1", t:refresh_token())
      assert.equal("s1", t:scope())
      assert.equal(at, t:expires_at())
    end)

    it("a failed refresh against the emulator keeps the working token", function()
      local t = cc()
      local before = t:access_token()
      e:fault("connect_token", "503", 1)
      local ok, err = t:refresh()
      assert.is_nil(ok)
      assert.equal("http", err.kind)
      assert.is_true(err.retryable)
      assert.equal(before, t:access_token())
      assert.equal(200, api_status(t))
    end)

    it("refreshes a 2012 self-granted token at access_token with its single-use refresh token", function()
      local t = assert(core.generate_token { url = e.http_url .. "/oauth/generate_token",
                                             client_id = PARTNER, client_secret = PSECRET })
      local rt = t:refresh_token()
      assert.equal(t, t:refresh())
      assert.not_equal(rt, t:refresh_token())
      assert.equal(1, e:counters().issued.oauth_access_token)
      assert.equal(200, api_status(t))
    end)

    it("raises for an authorization-code token without a refresh token", function()
      local t = assert(core.authorization_code {
        token_url = "http://id.invalid/connect/token", client_id = "c", client_secret = "sekrit-1", code = "x",
        redirect_uri = "http://127.0.0.1/callback",
        transport = scripted { json(200, '{"access_token":"AT"}') },
      })
      assert.has_error(function() t:refresh() end,
        "token:refresh(): no refresh token, and this grant cannot be repeated")
    end)

    it("refuses a refresh from inside its own refresh", function()
      local t
      t = offline { transport = scripted {
        json(200, '{"access_token":"AT1"}'),
        function() t:refresh(); return json(200, '{"access_token":"AT2"}') end,
      } }
      -- the inner refresh raises inside the transport function, which the
      -- outer refresh reports as its error
      local res, err = t:refresh()
      assert.is_nil(res)
      assert.truthy(err.message:find("busy", 1, true), err.message)
      assert.equal("AT1", t:access_token())
    end)

    it("raises when the token was closed during its own refresh", function()
      local t
      t = offline { transport = scripted {
        json(200, '{"access_token":"AT1"}'),
        function() t:close(); return json(200, '{"access_token":"AT2"}') end,
      } }
      assert.has_error(function() t:refresh() end, "token closed while its request ran")
      assert.equal("avalara.token (closed)", tostring(t))
      assert.has_error(function() t:access_token() end, "attempt to use a closed token")
    end)
  end)

  describe("revoke", function()
    local function revoke_url(token_url, extra)
      local transport, log = scripted { json(200, '{"access_token":"AT","refresh_token":"RT"}'),
                                        { status = 200, headers = {}, body = "" } }
      local args = { token_url = token_url, client_id = "c", client_secret = "sekrit-1", transport = transport }
      for k, v in pairs(extra or {}) do args[k] = v end
      local t = assert(core.client_credentials(args))
      assert.is_true(t:revoke())
      return log[2].url, log[2].body
    end

    it("derives the endpoint from the token URL", function()
      assert.equal("https://id.example/connect/revocation", revoke_url("https://id.example/connect/token"))
      assert.equal("https://x/oauth/revoke", revoke_url("https://x/oauth/access_token"))
      assert.equal("https://x/oauth/revoke", revoke_url("https://x/oauth/generate_token?a=1"))
    end)

    it("prefers the revocation_url option", function()
      assert.equal("https://other/revoke", revoke_url("https://x/connect/token",
                                                      { revocation_url = "https://other/revoke" }))
    end)

    it("revokes the refresh token when there is one", function()
      local _, body = revoke_url("https://x/connect/token")
      assert.equal("token=RT&token_type_hint=refresh_token&client_id=c&client_secret=sekrit-1", body)
    end)

    it("raises when no endpoint can be derived", function()
      local t = assert(offline { token_url = "https://x/token",
                                 transport = scripted { json(200, '{"access_token":"AT"}') } })
      assert.has_error(function() t:revoke() end)
    end)

    it("revokes the access token at the emulator; the API then refuses it", function()
      local t = cc()
      assert.is_true(t:revoke())
      assert.equal(401, api_status(t))
      assert.equal(1, e:counters().routes.connect_revocation)
    end)

    it("revokes a 2012 authorization through its refresh token", function()
      local t = assert(core.generate_token { url = e.http_url .. "/oauth/generate_token",
                                             client_id = PARTNER, client_secret = PSECRET })
      assert.equal(200, api_status(t))
      assert.is_true(t:revoke())
      assert.equal(401, api_status(t))
      assert.equal(1, e:counters().routes.oauth_revoke)
    end)
  end)

  describe("tostring", function()
    it("shows type, scope and expiry, never a secret", function()
      local t = cc()
      local s = tostring(t)
      assert.truthy(s:match("^avalara%.token %(Bearer, scope hs%-code%-classification, "
                            .. "expires %d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%dZ%)$"), s)
      assert.is_nil(s:find(t:access_token(), 1, true))
      assert.is_nil(s:find(KEY, 1, true))
    end)

    it("shows the 2012 far-future expiry", function()
      local t = assert(core.generate_token { url = e.http_url .. "/oauth/generate_token",
                                             client_id = PARTNER, client_secret = PSECRET })
      assert.equal("avalara.token (avalara, scope CompanyUser, expires 9999-12-31T23:59:59Z)", tostring(t))
      assert.equal("Bearer " .. t:access_token(), t:authorization())
    end)
  end)

  describe("close", function()
    local methods = { "access_token", "token_type", "scope", "refresh_token", "expires_at", "expires_in",
                      "is_expired", "authorization", "refresh", "revoke" }

    it("makes every method raise, tostring say closed, and is idempotent", function()
      local t = cc()
      assert.is_true(t:close())
      for _, m in ipairs(methods) do
        assert.has_error(function() t[m](t) end, "attempt to use a closed token")
      end
      assert.equal("avalara.token (closed)", tostring(t))
      assert.is_true(t:close())
    end)

    it("is safe with the garbage collector, before and after close", function()
      local closed = cc()
      closed:close()
      closed = nil -- luacheck: ignore 311
      local _ = cc()
      _ = nil -- luacheck: ignore 311
      collectgarbage()
      collectgarbage()
      assert.equal("Bearer", cc():token_type())
    end)

    it("survives __gc run twice, and a close after it", function()
      local t = cc()
      local gc = debug.getmetatable(t).__gc
      gc(t)
      gc(t)
      assert.equal("avalara.token (closed)", tostring(t))
      assert.has_error(function() t:access_token() end, "attempt to use a closed token")
      assert.is_true(t:close())
    end)

    it("authorizes core.request while open, and is refused by it once closed", function()
      local t = cc()
      local url = e.http_url .. "/api/v2/definitions/crossborder/sections"
      local status = core.request { method = "GET", url = url, token = t }
      assert.equal(200, status)
      t:close()
      local before = e:counters().requests
      assert.has_error(function() core.request { method = "GET", url = url, token = t } end,
        "attempt to use a closed token")
      assert.equal(before, e:counters().requests)
    end)

    it("rejects something that is not a token", function()
      local t = cc()
      assert.has_error(function() t.access_token({}) end)
      assert.has_error(function() t.close(io.stdout) end)
    end)

    if _VERSION == "Lua 5.4" then
      it("closes a to-be-closed variable on scope exit (Lua 5.4)", function()
        -- compiled at run time so that LuaJIT can parse this file
        local chunk = assert(load([[
          local core, args = ...
          local kept
          do
            local t <close> = assert(core.client_credentials(args))
            kept = t
            assert(t:access_token())
          end
          return kept
        ]]))
        local t = chunk(core, { token_url = e.http_url .. "/connect/token", client_id = ID,
                                client_secret = KEY })
        assert.equal("avalara.token (closed)", tostring(t))
        assert.has_error(function() t:access_token() end, "attempt to use a closed token")
      end)
    end
  end)
end)
