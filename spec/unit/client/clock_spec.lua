-- avalara.clock.set: the host's clock and sleep through one seam (issue 25,
-- defect 8). Every case gives the platform's clock back (set(nil), reset).
local clock = require "avalara.clock"
local retry = require "avalara.retry"
local socket = require "socket"

describe("avalara.clock.set", function()
  after_each(function()
    clock.set(nil)
    clock.reset()
  end)

  it("reads the host's now and sleeps through the host's sleep", function()
    local slept = {}
    clock.set { now = function() return 1700000000.25 end, sleep = function(s) slept[#slept + 1] = s end }
    assert.equal(1700000000.25, clock.now())
    assert.equal(1700000000, clock.time())
    clock.sleep(0.5)
    clock.sleep(0) -- nothing to wait for: the host is not called
    retry.sleep(2) -- the retries' sleep is the clock's
    assert.same({ 0.5, 2 }, slept)
    assert.equal(1700000000.25, retry.now()) -- retry.now is the clock's
    clock.advance(10) -- tests still move it
    assert.equal(1700000010.25, clock.now())
  end)

  it("keeps the platform's half that is not given, and set(nil) gives both back", function()
    local before = socket.gettime()
    clock.set { now = function() return 42 end }
    assert.equal(42, clock.now())
    local t0 = socket.gettime()
    clock.sleep(0.02) -- the platform's sleep
    assert.is_true(socket.gettime() - t0 >= 0.015)
    clock.set(nil)
    assert.is_true(clock.now() >= before and clock.now() < before + 60)
  end)

  it("returns the previous functions, to give back later", function()
    local function a() return 1 end
    local function b() return 2 end
    clock.set { now = a }
    local previous = clock.set { now = b }
    assert.equal(a, previous.now)
    assert.equal(2, clock.now())
    clock.set(previous)
    assert.equal(1, clock.now())
  end)

  it("reaches every client: its waits sleep through the host's sleep", function()
    local avalara = require "avalara"
    local slept = 0
    clock.set { sleep = function() slept = slept + 1 end }
    local c = avalara.new { environment = "local", emulator_url = "http://127.0.0.1:9", account_id = "1",
      license_key = "k", company_id = 1 }
    c.sleep(0.25)
    c:pause()
    assert.equal(2, slept)
  end)

  it("inside nginx: ngx.sleep where it yields, ngx.now (updated) without LuaSocket; the host's still first", function()
    local S = require "spec.support.sandbox"
    local env, req = S.new()
    local calls, phase = {}, "content"
    env.ngx = { get_phase = function() return phase end, now = function() return 1800000000.5 end,
      update_time = function() calls[#calls + 1] = "update_time" end,
      sleep = function(s) calls[#calls + 1] = "ngx.sleep " .. s end }
    local c = req("avalara.clock") -- a fresh copy, in a state without os and LuaSocket
    assert.equal(1800000000.5, c.now())
    c.sleep(0.25)
    assert.same({ "update_time", "ngx.sleep 0.25" }, calls)
    phase = "init_worker" -- no cosockets there: the platform's sleep, and this state has none
    assert.has_error(function() c.sleep(0.25) end)
    c.set { now = function() return 7 end, sleep = function(s) calls[#calls + 1] = "host " .. s end }
    phase = "content"
    c.sleep(1)
    assert.equal(7, c.now())
    assert.equal("host 1", calls[#calls])
  end)

  it("refuses what is not a function, and a now that returns no number", function()
    assert.has_error(function() clock.set(5) end,
      "clock.set: expected a table {now = function, sleep = function} or nil (got number)")
    assert.has_error(function() clock.set { now = 5 } end, "clock.set: 'now' must be a function (got number)")
    assert.has_error(function() clock.set { sleep = "x" } end, "clock.set: 'sleep' must be a function (got string)")
    assert.has_error(function() clock.sleep("1") end, "clock.sleep: 'seconds' must be a number (got string)")
    clock.set { now = function() return "soon" end }
    assert.has_error(function() clock.now() end,
      "avalara.clock: the host's now() returned string (it must return seconds since the epoch)")
  end)
end)
