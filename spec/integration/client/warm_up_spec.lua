-- client:warm_up() (issue 25, frames): before the loop, the token and a
-- connection to the API host, so that the loop's first poll(0) makes no
-- TLS handshake (and loads no CA bundle): every connection the loop uses
-- is one warm_up opened. Read from /proc/net/tcp (the client side of the
-- connections to the emulator's HTTPS port); bench/frames.lua measures the
-- frames themselves (not asserted here: timings).
local emu = require "spec.support.emulator"
local H = require "spec.support.client"

-- The local ports of the established connections to `port` on 127.0.0.1.
local function connections(port)
  local out = {}
  local f = io.open("/proc/net/tcp")
  if not f then return nil end
  for line in f:lines() do
    local lport, rport, st = line:match("^%s*%d+: %x+:(%x+) %x+:(%x+) (%x+)")
    if lport and tonumber(rport, 16) == tonumber(port) and st == "01" then out[tonumber(lport, 16)] = true end
  end
  f:close()
  return out
end

describe("client:warm_up", function()
  local e
  setup(function() e = emu.start() end)
  teardown(function() e:stop() end)

  it("opens the connections before the loop, and the loop opens none", function()
    if not connections(e.tls_port) then
      pending("no /proc/net/tcp here")
      return
    end
    -- the token from another origin (plain HTTP here), as Avalara's identity host is not its API host
    local c = H.client(e, { emulator_url = e.https_url, cafile = e.ca_file, concurrency = 8,
      token_url = e.http_url .. "/connect/token" })
    assert.same({}, connections(e.tls_port))
    assert.is_true(c:warm_up())
    local warm = connections(e.tls_port)
    assert.is_not_nil(next(warm), "warm_up opened no connection")
    assert.equal(1, H.route(e, "connect_token"))
    local hs = {}
    for i = 1, 8 do
      hs[i] = c:start_classify({ itemCode = "WU-" .. i, description = "bicycle" }, { country = "US", wait = true })
    end
    local extra = {}
    for _ = 1, 1000 do
      c:poll(0.005)
      for p in pairs(connections(e.tls_port)) do
        if not warm[p] then extra[#extra + 1] = p end
      end
      if c:pending() == 0 then break end
    end
    for i = 1, 8 do
      assert.is_true(hs[i].done)
      assert.is_nil(hs[i].err)
    end
    assert.same({}, extra) -- every request of the loop went on a warm connection (HTTP/2)
    assert.equal(1, H.route(e, "connect_token")) -- the loop took warm_up's token
  end)

  it("returns the error when the API host cannot be reached, and the token's", function()
    local c = H.client(e, { emulator_url = e.https_url, cafile = e.ca_file })
    c.api_base = "https://127.0.0.1:9" -- nothing listens there
    local ok, err = c:warm_up()
    assert.is_nil(ok)
    assert.equal("transport", err.kind)
    local bad = H.client(e, { license_key = "WRONG-KEY" })
    ok, err = bad:warm_up()
    assert.is_nil(ok)
    assert.equal("oauth", err.kind)
  end)

  it("starts_per_poll bounds what one poll starts (a frame's budget); every call still ends", function()
    local c = H.client(e, { emulator_url = e.https_url, cafile = e.ca_file, concurrency = 16, starts_per_poll = 2 })
    assert.is_true(c:warm_up())
    local before = H.route(e, "classification_create")
    local hs = {}
    for i = 1, 8 do
      hs[i] = c:start_classify({ itemCode = "SP-" .. i, description = "bicycle" }, { country = "US", wait = true })
    end
    c:poll(0)
    require("socket").sleep(0.3) -- what that poll sent reaches the emulator; nothing more is sent meanwhile
    assert.is_true(H.route(e, "classification_create") - before <= 2)
    for _ = 1, 2000 do
      c:poll(0.005)
      if c:pending() == 0 then break end
    end
    for i = 1, 8 do assert.is_nil(hs[i].err) end
    assert.equal(8, H.route(e, "classification_create") - before)
    assert.has_error(function() H.client(e, { starts_per_poll = 0 }) end,
      "avalara.new: 'starts_per_poll' must be a number >= 1")
  end)
end)
