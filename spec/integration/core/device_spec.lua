-- The device authorization grant (RFC 8628) in avalara.core against the
-- emulator: core.device_authorization, the avalara.device object and its
-- polls (core.device_token, device:poll, device:prepare_poll), every
-- answer of the token endpoint, and the device code kept out of sight.
local core = require "avalara.core"
local emu = require "spec.support.emulator"

local ID, KEY = "2000000001", "DEMO-LICENSE-KEY-0001"

describe("core device authorization", function()
  local e

  setup(function() e = emu.start() end)
  teardown(function() if e then e:stop() end end)
  before_each(function() e:reset() end)

  local function start(extra)
    local args = { url = e.http_url .. "/connect/deviceauthorization", client_id = "hscode-cli",
      scope = "hs-code-classification" }
    for k, v in pairs(extra or {}) do args[k] = v end
    return core.device_authorization(args)
  end

  local function answer(d, action)
    local res = assert(e:request("POST", "/device", { form = { user_code = d.user_code, action = action,
      account_id = ID, license_key = KEY } }))
    assert.equal(200, res.status)
  end

  -- The device code, seen only by the emulator: the last device code it issued.
  local function leaked(s, code)
    return code ~= nil and tostring(s):find(code, 1, true) ~= nil
  end

  it("answers the user code, the URIs, expires_in and interval #smoke", function()
    local d, err = start()
    assert.is_nil(err)
    assert.matches("^%u%u%u%u%-%u%u%u%u$", d.user_code)
    assert.equal(e.http_url .. "/device", d.verification_uri)
    assert.equal(d.verification_uri .. "?user_code=" .. d.user_code, d.verification_uri_complete)
    assert.equal(5, d.interval)
    assert.is_true(d.expires_in >= 299 and d.expires_in <= 300)
    assert.is_true(d.expires_at >= os.time() + 298)
    assert.is_false(d.over)
    assert.is_nil(d.device_code)
    assert.equal(1, tostring(d):find("avalara.device (user code " .. d.user_code, 1, true))
    assert.not_matches("device_code", tostring(d))
  end)

  it("polls: authorization_pending, slow_down (interval + 5 s), then the token once approved", function()
    local d = assert(start())
    local tok, err = d:poll()
    assert.is_nil(tok)
    assert.equal("oauth", err.kind)
    assert.equal("authorization_pending", err.code)
    assert.equal(400, err.status)
    assert.is_true(err.retryable)
    tok, err = core.device_token(d)
    assert.is_nil(tok)
    assert.equal("slow_down", err.code)
    assert.equal(10, d.interval)
    answer(d, "approve")
    e:configure({ device_interval = 0 })
    -- the code's own interval grew at the server too: wait it out there
    assert.equal("slow_down", select(2, d:poll()).code)
    assert.equal(15, d.interval)
  end)

  it("gets a token that works and revokes, and the code is spent", function()
    e:configure({ device_interval = 0 })
    local d = assert(start())
    answer(d, "approve")
    local tok, err = d:poll()
    assert.is_nil(err)
    assert.equal("Bearer", tok:token_type())
    assert.equal("hs-code-classification", tok:scope())
    assert.is_true(tok:expires_in() > 3500)
    assert.is_true(d.over)
    assert.has_error(function() d:poll() end,
      "device:poll(): this device authorization is over (a token, a denial or the expiry came back)")
    local api = assert(e:request("GET", "/api/v2/definitions/crossborder/sections",
      { headers = { Authorization = tok:authorization() } }))
    assert.equal(200, api.status)
    assert.has_error(function() tok:refresh() end, "token:refresh(): no refresh token, and this grant cannot be repeated")
    assert.is_true(tok:revoke()) -- a public client: client_id alone
    assert.is_true(core.revoke { url = e.http_url .. "/connect/revocation", client_id = "hscode-cli",
      token = "no-such-token" })
    api = assert(e:request("GET", "/api/v2/definitions/crossborder/sections",
      { headers = { Authorization = tok:authorization() } }))
    assert.equal(401, api.status)
  end)

  it("reports access_denied and expired_token, and the code is spent", function()
    e:configure({ device_interval = 0 })
    local d = assert(start())
    answer(d, "deny")
    local tok, err = d:poll()
    assert.is_nil(tok)
    assert.equal("access_denied", err.code)
    assert.is_false(err.retryable)
    assert.is_true(d.over)
    e:configure({ device_code_ttl = 0 })
    d = assert(start())
    assert.equal(0, d.expires_in)
    tok, err = d:poll()
    assert.is_nil(tok)
    assert.equal("expired_token", err.code)
  end)

  it("authenticates a confidential client (post and basic)", function()
    e:configure({ device_interval = 0 })
    for _, method in ipairs({ "post", "basic" }) do
      local d = assert(start({ client_id = ID, client_secret = KEY, auth_method = method }))
      answer(d, "approve")
      assert.equal("Bearer", assert(d:poll()):token_type())
    end
    local d, err = start({ client_id = ID, client_secret = "WRONG-KEY" })
    assert.is_nil(d)
    assert.equal("oauth", err.kind)
    assert.equal("invalid_client", err.code)
    assert.not_matches("WRONG%-KEY", tostring(err) .. tostring(err.body))
  end)

  it("polls through a transport of its own (prepare_poll)", function()
    e:configure({ device_interval = 0 })
    local d = assert(start())
    local ex = d:prepare_poll()
    local req = assert(ex:request())
    assert.matches("device_code=", req.body)
    assert.has_error(function() d:poll() end, "device:poll(): a poll of this device authorization is running")
    local tok, err = ex:perform()
    assert.is_nil(tok)
    assert.equal("authorization_pending", err.code)
    answer(d, "approve")
    assert.equal("Bearer", assert(d:prepare_poll():perform()):token_type())
  end)

  it("keeps the device code out of errors and bodies", function()
    local d = assert(start())
    local ex = d:prepare_poll()
    local code = assert(ex:request()).body:match("device_code=([^&]+)")
    assert.truthy(code)
    ex:close()
    local _, err = d:poll()
    assert.is_false(leaked(tostring(err), code))
    assert.is_false(leaked(err.body, code))
    assert.is_false(leaked(tostring(d), code))
    -- an HTML page instead of an OAuth answer
    e:fault("connect_token", "html", 1)
    _, err = d:poll()
    assert.equal("http", err.kind)
  end)

  it("reads a bad answer as parse or http, never raising", function()
    e:fault("connect_deviceauthorization", "invalid_json", 1)
    local d, err = start()
    assert.is_nil(d)
    assert.equal("parse", err.kind)
    assert.matches("device authorization response is not valid JSON", err.message)
    e:fault("connect_deviceauthorization", "500", 1)
    d, err = start()
    assert.is_nil(d)
    assert.equal(500, err.status)
    local p = core.protocol.parse_device_response(200, '{"device_code":"x","user_code":"A","verification_url":"u",'
      .. '"expires_in":"60"}')
    assert.same({ result = "ok", user_code = "A", verification_uri = "u", expires_in = 60, interval = 5 }, p)
    assert.equal("parse", core.protocol.parse_device_response(200, '{"device_code":"a b"}').result)
  end)

  it("checks its arguments before any traffic", function()
    assert.has_error(function() core.device_authorization({ client_id = "x" }) end,
      "device_authorization: field 'url' is required")
    assert.has_error(function() core.device_authorization({ url = e.http_url .. "/connect/deviceauthorization" }) end,
      "device_authorization: field 'client_id' is required")
    assert.has_error(function() core.device_authorization({ url = e.http_url .. "/elsewhere", client_id = "x" }) end,
      "device_authorization: field 'token_url' is required (it cannot be derived from url)")
    assert.has_error(function() core.device_token({}) end)
    local c = e:counters()
    assert.is_nil(c.routes.connect_deviceauthorization)
  end)
end)
