-- A `timeout` bounds the whole call (issue 23, item 8): retries and a stalled
-- request included, each request's own timeout clipped to the time left.
local clock = require "avalara.clock"
local retry = require "avalara.retry"
local emu = require "spec.support.emulator"
local H = require "spec.support.client"

-- The margin a deadline may be overrun by: the last request's end, the
-- error's making and a loaded machine (2 cores shared by several runs).
local MARGIN = 1.0

describe("retry.run with a deadline", function()
  it("starts no attempt whose delay would reach the deadline", function()
    local t, calls = 0, 0
    local _, err = retry.run(retry.policy { max_attempts = 10, base_delay = 1, max_delay = 1, deadline = 100 },
      function() calls = calls + 1; t = t + 0.5; return nil, { kind = "transport", message = "x" } end,
      { sleep = function(s) t = t + s end, now = function() return t end, random = function() return 1 end,
        deadline = 4 })
    assert.equal("transport", err.kind)
    assert.equal(3, calls) -- 0.5, 2, 3.5: a fourth would start at 4.5
  end)
end)

describe("client:within", function()
  it("clips each request's timeout to the time left and fails at once past it", function()
    local seen = {}
    local c = H.client({ http_url = "http://127.0.0.1:1" }, { timeout = 30, transport = function(req)
      seen[#seen + 1] = req.timeout
      return nil, { kind = "timeout", message = "stalled" }
    end, token_source = { token = function() return { access_token = "t", expires_at = clock.now() + 3600 } end } })
    local t0 = clock.now()
    local s, err = c:within(t0 + 2, function() return c:call("GET", "/x") end)
    assert.is_nil(s)
    assert.equal("timeout", err.kind)
    assert.is_true(#seen >= 1)
    for _, t in ipairs(seen) do assert.is_true(t <= 2, tostring(t)) end
    -- past the deadline nothing is sent
    seen = {}
    s, err = c:within(t0 - 1, function() return c:call("GET", "/x") end)
    assert.is_nil(s)
    assert.equal("timeout", err.kind)
    assert.matches("timeout ran out", err.message)
    assert.same({}, seen)
    -- scopes nest, the earlier deadline holds, and end with their call
    c:within(t0 + 100, function()
      c:within(t0 + 5, function() assert.equal(t0 + 5, c:deadline()) end)
      assert.equal(t0 + 100, c:deadline())
    end)
    assert.is_nil(c:deadline())
    assert.has_error(function() c:within(t0, function() error("boom", 0) end) end, "boom")
    assert.is_nil(c:deadline())
  end)
end)

describe("a timeout bounds the whole wait", function()
  local e
  setup(function() e = emu.start() end)
  teardown(function() e:stop() end)
  before_each(function() e:reset() end)

  for _, how in ipairs { "libcurl", "a Lua transport" } do
    it("client:wait{timeout = 3} with a stalled read returns within 3 s (+" .. MARGIN .. " s), kind timeout ("
      .. how .. ")", function()
      local c = H.client(e, { timeout = 30, transport = how ~= "libcurl" and H.socket_transport() or nil })
      e:configure { classification_delay = 60 }
      local model = assert(c:classify { itemCode = "STALL-1", description = "wooden chair",
        countryOfDestination = "US" })
      e:fault("classification_get", "stall", 10, { stall_seconds = 8 })
      local t0 = clock.now()
      local m, err = c:wait(model, { timeout = 3, interval = 0.1 })
      local took = clock.now() - t0
      assert.is_nil(m)
      assert.equal("timeout", err.kind)
      assert.is_true(took >= 2.5 and took <= 3 + MARGIN, "took " .. took .. " s")
    end)
  end

  for _, how in ipairs { "libcurl", "a Lua transport" } do
    it("client:start_wait{timeout = 3} with a stalled read ends within 3 s (+" .. MARGIN .. " s), kind timeout ("
      .. how .. ")", function()
      local c = H.client(e, { timeout = 30, transport = how ~= "libcurl" and H.socket_transport() or nil })
      e:configure { classification_delay = 60 }
      local model = assert(c:classify { itemCode = "STALL-2", description = "wooden chair",
        countryOfDestination = "US" })
      e:fault("classification_get", "stall", 10, { stall_seconds = 8 })
      local t0 = clock.now()
      local h = c:start_wait(model.id, { timeout = 3, interval = 0.1 })
      local done
      repeat done = c:poll(0.2) until #done > 0 or clock.now() - t0 > 10
      local took = clock.now() - t0
      assert.equal(1, #done)
      assert.equal(h, done[1].handle)
      assert.is_nil(done[1].result)
      assert.equal("timeout", done[1].err.kind)
      assert.is_true(took >= 2.5 and took <= 3 + MARGIN, "took " .. took .. " s")
    end)
  end

  it("classify_batch{timeout = 3} with its polls stalled ends each row within 3 s (+" .. MARGIN .. " s)", function()
    local c = H.client(e, { timeout = 30 })
    e:configure { classification_delay = 60 }
    e:fault("classification_get", "stall", 10, { stall_seconds = 8 })
    local t0 = clock.now()
    local results = c:classify_batch(H.items(2, "STALL-B"), { timeout = 3, interval = 0.1 })
    local took = clock.now() - t0
    assert.equal(2, #results)
    for _, r in ipairs(results) do
      assert.equal("timeout", r.kind)
      assert.matches("still PENDING", r.message)
    end
    assert.is_true(took <= 3 + MARGIN, "took " .. took .. " s")
  end)

  it("wait_hscode_classification{timeout = 3} with a stalled read returns within 3 s, kind timeout", function()
    local c = H.client(e, { timeout = 30 })
    e:fault("items_list", "stall", 10, { stall_seconds = 8 })
    local t0 = clock.now()
    local out, err = c:wait_hscode_classification({ 1 }, nil, { timeout = 3, interval = 0.1 })
    local took = clock.now() - t0
    assert.is_nil(out)
    assert.equal("timeout", err.kind)
    assert.is_true(took <= 3 + MARGIN, "took " .. took .. " s")
  end)
end)
