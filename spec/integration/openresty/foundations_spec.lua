-- The nginx foundations outside nginx, and their one error shape (issue 22):
-- `avalara.transport.nginx` says "libcurl" in plain Lua; the cosocket and
-- subrequest transports refuse an unfit request with `nil, err`, `err` an
-- `avalara.error`; a RESP client that cannot connect returns `nil, err`
-- (kind "store", code "unreachable", retryable, fault "socket"), as does the
-- Redis store on it; the old module names are the new modules.
local core = require "avalara.core"
local socket = require "socket"

-- A loopback port nothing listens on.
local function closed_port()
  local s = assert(socket.bind("127.0.0.1", 0))
  local _, port = s:getsockname()
  s:close()
  return tonumber(port)
end

describe("nginx foundations outside nginx", function()
  it("say libcurl, not in nginx", function()
    local nginx = require "avalara.transport.nginx"
    assert.is_false(nginx.in_nginx())
    assert.equal("libcurl", nginx.mode())
    local openresty = require "avalara.openresty"
    assert.equal(nginx.mode, openresty.mode)
    assert.equal(nginx.in_nginx, openresty.in_nginx)
  end)

  it("keep the documented names as the moved modules", function()
    assert.equal(require "avalara.transport.subrequest", require "avalara.openresty.subrequest")
    assert.equal(require "avalara.resp.client", require "avalara.redis.client")
    assert.equal(require "avalara.resp.protocol", require "avalara.redis.resp")
    assert.equal(require("avalara.store.shared_dict").new, require("avalara.openresty").store)
    assert.equal(require("avalara.store.memory").new, require("avalara.store").memory)
  end)

  it("refuse an unfit request with nil, err (an avalara.error of kind transport)", function()
    local bad = { method = "GET", url = "https://example.test/a\r\nX-Injected: 1", headers = {} }
    for name, transport in pairs {
      cosocket = require("avalara.transport.cosocket").transport(),
      subrequest = require("avalara.transport.subrequest").transport("/_avalara"),
    } do
      local resp, err = transport(bad)
      assert.is_nil(resp, name)
      assert.is_true(core.is_error(err), name)
      assert.equal("transport", err.kind, name)
      assert.truthy(err.message:find("^request not sent: the URL"), err.message)
    end
    assert.is_nil(require("avalara.transport.cosocket").unfit { method = "GET", url = "https://example.test/" })
  end)
end)

describe("the RESP client's one error shape", function()
  it("gives nil, err (kind store, code unreachable, fault socket) when nothing listens", function()
    local port = closed_port()
    local c = require("avalara.resp.client").new { port = port, timeout = 0.5 }
    for _, call in ipairs { function() return c:command("GET", "k") end,
                            function() return c:eval("return 1", {}, {}) end } do
      local v, err, extra = call()
      assert.is_nil(v)
      assert.is_nil(extra)
      assert.is_true(core.is_error(err))
      assert.same({ "store", "unreachable", true, "socket" }, { err.kind, err.code, err.retryable, err.fault })
      assert.truthy(err.message:find("^redis 127.0.0.1:" .. port .. "/0: cannot connect"), err.message)
    end
    local s = require("avalara.store").redis { port = port, timeout = 0.5 }
    local v, version, err = s:get("k")
    assert.is_nil(v)
    assert.is_nil(version)
    assert.same({ "store", "unreachable", tostring(s) }, { err.kind, err.code, err.store })
    local ok, cerr = s:cas("k", nil, { n = 1 })
    assert.is_nil(ok)
    assert.equal("unreachable", cerr.code)
  end)
end)
