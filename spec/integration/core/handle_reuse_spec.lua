-- One pooled libcurl handle from one transfer to the next (issue 27, the
-- leaner classic binding): a handle keeps its header list, URL and timeouts
-- and sets only what differs, so each transfer must still send exactly what
-- its own request says, never a line of the one before; gzip is asked for
-- once and decoded. Checked on the wire (spec/support/hostile_server.lua).
local core = require "avalara.core"
local emu = require "spec.support.emulator"
local hostile = require "spec.support.hostile"

describe("a reused libcurl handle", function()
  local h, e
  setup(function()
    h = hostile.start()
    e = emu.start()
  end)
  teardown(function()
    h:stop()
    e:stop()
  end)

  local function lines(args)
    args.url = args.url or h.url .. "/lines"
    local status, body = core.request(args)
    assert.equal(200, status, tostring(body))
    local set = {}
    for _, l in ipairs(body.lines) do
      local k = l:match("^([^:]+):"):lower()
      assert.is_nil(set[k], "two " .. k .. " lines")
      set[k] = l:match("^[^:]+:%s*(.*)$")
    end
    return set, body
  end

  it("sends each request's own lines, whatever the handle sent before", function()
    local a = lines { token = "TOKEN-A", headers = { ["X-One"] = "1" } }
    assert.equal("Bearer TOKEN-A", a.authorization)
    assert.equal("1", a["x-one"])
    assert.equal("gzip", a["accept-encoding"])
    assert.matches("^avalara%-hscode/", a["user-agent"])
    assert.equal("application/json", a.accept)
    -- the same lines again, then others: nothing left over
    assert.same(a, (lines { token = "TOKEN-A", headers = { ["X-One"] = "1" } }))
    local b = lines { token = "TOKEN-B" }
    assert.equal("Bearer TOKEN-B", b.authorization)
    assert.is_nil(b["x-one"])
    -- a request's own User-Agent and Accept-Encoding replace ours
    local c = lines { token = "TOKEN-B", headers = { ["User-Agent"] = "mine/1", ["Accept-Encoding"] = "identity" } }
    assert.equal("mine/1", c["user-agent"])
    assert.equal("identity", c["accept-encoding"])
    local d = lines { token = "TOKEN-B" }
    assert.matches("^avalara%-hscode/", d["user-agent"])
    assert.equal("gzip", d["accept-encoding"])
    -- the user_agent option: a handle of its own
    assert.equal("agent/2", (lines { token = "TOKEN-B", user_agent = "agent/2" })["user-agent"])
    assert.matches("^avalara%-hscode/", (lines { token = "TOKEN-B" })["user-agent"])
  end)

  it("changes method, body and URL between transfers", function()
    local big = ("x"):rep(2000)
    local set, body = lines { method = "POST", token = "T", body = big }
    assert.equal("POST", body.method)
    assert.equal(big, body.body)
    assert.is_nil(set.expect) -- "Expect:" removes libcurl's 100-continue
    set, body = lines { method = "DELETE", token = "T" }
    assert.equal("DELETE", body.method)
    assert.is_nil(set.expect)
    assert.is_nil(set["content-type"])
    set, body = lines { token = "T" }
    assert.is_nil(set["content-length"])
    assert.equal("GET", body.method)
    local s2, m = core.request { url = h.url .. "/ok", token = "T" }
    assert.equal(200, s2)
    assert.equal(1, m.a)
  end)

  it("decodes a gzip body, Accept-Encoding sent once", function()
    local status, body, headers = core.request { url = h.url .. "/gzip", token = "T" }
    assert.equal(200, status)
    assert.equal("610910", body.hsCode)
    assert.equal("1", headers["x-accept-encoding-lines"])
    assert.matches("^avalara%-hscode/", headers["x-user-agent"])
    status, body, headers = core.request { url = h.url .. "/gzip", token = "T",
      headers = { ["accept-encoding"] = "identity" } }
    assert.equal(200, status)
    assert.equal("CLASSIFIED", body.status)
    assert.equal("1", headers["x-accept-encoding-lines"])
    assert.is_nil(headers["content-encoding"])
  end)

  it("applies a changed timeout on the next transfer", function()
    local token = e:token()
    local url = e.http_url .. "/api/v2/definitions/crossborder/sections"
    assert.equal(200, (core.request { url = url, token = token, timeout = 5 }))
    e:configure { latency_ms = 400 }
    local _, err = core.request { url = url, token = token, timeout = 0.1 }
    assert.equal("timeout", err.kind)
    assert.equal(200, (core.request { url = url, token = token, timeout = 5 }))
    e:configure { latency_ms = 0 }
  end)
end)
