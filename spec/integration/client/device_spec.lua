-- avalara.device (RFC 8628 in the Lua layer) against the emulator: start by
-- url or by issuer (discovery), login:poll() for event loops, login:wait{}
-- sleeping through avalara.clock (no real sleep), approve, deny, expiry,
-- slow_down, and argument checks before any traffic.
local device = require "avalara.device"
local avalara = require "avalara"
local clock = require "avalara.clock"
local core = require "avalara.core"
local emu = require "spec.support.emulator"
local hostile = require "spec.support.hostile"

local ID, KEY = "2000000001", "DEMO-LICENSE-KEY-0001"

describe("avalara.device", function()
  local e, issuer

  setup(function()
    e = emu.start()
    issuer = hostile.spawn("spec/support/discovery_server.lua", { e.http_url })
  end)
  teardown(function()
    if issuer then issuer:stop() end
    if e then e:stop() end
  end)
  before_each(function()
    e:reset()
    clock.reset()
  end)
  after_each(function() clock.reset() end)

  local slept
  local function start(extra)
    slept = {}
    local opts = { url = e.http_url .. "/connect/deviceauthorization", client_id = "hscode-cli",
      scope = "hs-code-classification", sleep = function(s) slept[#slept + 1] = s; clock.advance(s) end }
    for k, v in pairs(extra or {}) do
      if v == false then v = nil end
      opts[k] = v
    end
    return device.start(opts)
  end

  local function answer(login, action)
    local res = assert(e:request("POST", "/device", { form = { user_code = login.user_code, action = action,
      account_id = ID, license_key = KEY } }))
    assert.equal(200, res.status)
  end

  it("starts a login by url: the code, the URIs, expires_at, interval #smoke", function()
    local before = clock.now()
    local login, err = start()
    assert.is_nil(err)
    assert.matches("^%u%u%u%u%-%u%u%u%u$", login.user_code)
    assert.equal(e.http_url .. "/device", login.verification_uri)
    assert.equal(login.verification_uri .. "?user_code=" .. login.user_code, login.verification_uri_complete)
    assert.equal(5, login.interval)
    assert.is_true(login.expires_at >= before + 298 and login.expires_at <= clock.now() + 300)
    assert.equal(avalara.device, device)
  end)

  it("poll() never sleeps: pending before the interval, the token once approved", function()
    e:configure({ device_interval = 0 })
    local login = assert(start())
    assert.equal(1, login.interval) -- a server's 0 is taken as 1 s
    assert.same({ nil, "pending" }, { login:poll() }) -- too soon: no request
    assert.is_nil(e:counters().routes.connect_token)
    clock.advance(1)
    assert.same({ nil, "pending" }, { login:poll() }) -- authorization_pending
    assert.equal(1, e:counters().routes.connect_token)
    answer(login, "approve")
    clock.advance(1)
    local token = assert(login:poll())
    assert.equal("Bearer", token:token_type())
    assert.equal(token, login:poll())
    assert.equal(0, #slept)
  end)

  it("wait{} sleeps through avalara.clock until approved", function()
    e:configure({ device_interval = 0 })
    local login
    login = assert(start({ sleep = function(s)
      slept[#slept + 1] = s
      if #slept == 2 then answer(login, "approve") end
      clock.advance(s)
    end }))
    local token, err = login:wait{ timeout = 60 }
    assert.is_nil(err)
    assert.equal("hs-code-classification", token:scope())
    assert.equal(2, #slept)
    assert.is_true(math.abs(slept[1] - 1) < 0.1 and math.abs(slept[2] - 1) < 0.1)
  end)

  it("wait{} reports access_denied after a denial", function()
    e:configure({ device_interval = 0 })
    local login = assert(start())
    answer(login, "deny")
    local token, err = login:wait{}
    assert.is_nil(token)
    assert.equal("oauth", err.kind)
    assert.equal("access_denied", err.code)
    assert.equal(err, select(2, login:poll()))
  end)

  it("wait{} ends with kind timeout after its timeout, expired_token after the code's life", function()
    e:configure({ device_interval = 0, device_code_ttl = 20 })
    local login = assert(start())
    local token, err = login:wait{ timeout = 12 }
    assert.is_nil(token)
    assert.equal("timeout", err.kind)
    assert.matches("not approved within 12 s", err.message)
    token, err = login:wait{}
    assert.is_nil(token)
    assert.equal("expired_token", err.code)
    assert.is_true(clock.now() >= login.expires_at)
  end)

  it("slows down by 5 s when the server says slow_down", function()
    local login = assert(start()) -- the emulator's interval is 5 s of real time: the clock's 5 s are too fast
    clock.advance(5)
    assert.same({ nil, "pending" }, { login:poll() })
    clock.advance(5)
    assert.same({ nil, "pending" }, { login:poll() })
    assert.equal(10, login.interval)
    clock.advance(9)
    assert.same({ nil, "pending" }, { login:poll() })
    assert.equal(2, e:counters().routes.connect_token)
  end)

  it("starts by issuer, through its discovery document", function()
    e:configure({ device_interval = 0 })
    local login = assert(start({ url = false, issuer = issuer.url }))
    answer(login, "approve")
    local token = assert(login:wait{})
    assert.is_true(token:revoke()) -- the revocation endpoint the document named
    local login2, err = start({ url = false, issuer = issuer.url .. "/bare" })
    assert.is_nil(login2)
    assert.equal("parse", err.kind)
    assert.matches("names no device_authorization_endpoint", err.message)
  end)

  it("reports a refused client as oauth invalid_client", function()
    local login, err = start({ client_id = ID, client_secret = "WRONG" })
    assert.is_nil(login)
    assert.equal("invalid_client", err.code)
    assert.is_true(core.is_error(err))
  end)

  it("checks its arguments before any traffic", function()
    assert.has_error(function() device.start() end, "avalara.device.start: options must be a table (got nil)")
    assert.has_error(function() start({ client_ud = "x" }) end,
      "avalara.device.start: unknown option 'client_ud' (did you mean 'client_id'?)")
    assert.has_error(function() start({ issuer = "https://x" }) end,
      "avalara.device.start: give 'url' or 'issuer' (one of them)")
    assert.has_error(function() start({ client_id = 42 }) end,
      "avalara.device.start: 'client_id' must be a non-empty string")
    assert.has_error(function() start({ url = "http://example.com/connect/deviceauthorization" }) end)
    local login = assert(start())
    assert.has_error(function() login:wait{ timeout = -1 } end, "login:wait: 'timeout' must be a number >= 0")
    assert.has_error(function() device.Login.poll({}) end, "login:poll: not a login (call it as login:poll())")
    login:close()
    assert.has_error(function() login:poll() end, "login:poll: the login is closed")
    assert.equal(1, e:counters().routes.connect_deviceauthorization)
  end)
end)
