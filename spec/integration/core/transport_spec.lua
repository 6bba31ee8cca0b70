-- The transport of avalara.core (libcurl, or a Lua function): options,
-- TLS, timeouts, size cap, redirects, User-Agent, keep-alive, request_many.
local core = require "avalara.core"
local cjson = require "cjson"
local socket = require "socket"
local emu = require "spec.support.emulator"
local hostile = require "spec.support.hostile"

local SECTIONS = "/api/v2/definitions/crossborder/sections"

local function tmpdir()
  local p = assert(io.popen("mktemp -d"))
  local dir = p:read("*l")
  p:close()
  return dir
end

-- os.execute's success: true on Lua 5.2+, 0 on Lua 5.1 / LuaJIT.
local function run(cmd)
  local ok = os.execute(cmd)
  return ok == true or ok == 0
end

local function copy_file(from, to)
  local i = assert(io.open(from, "rb"))
  local o = assert(io.open(to, "wb"))
  o:write(i:read("*a"))
  i:close()
  o:close()
end

-- A one-shot HTTP server in another process: serves `n` connections, then
-- exits. "/redirect" answers 302, "/big" streams 5000 bytes with no
-- Content-Length, anything else echoes the request as JSON.
local function echo_server(n)
  local dir = tmpdir()
  local script = [=[
    local socket, cjson = require "socket", require "cjson"
    local srv = assert(socket.bind("127.0.0.1", 0))
    local _, port = srv:getsockname()
    local f = io.open(arg[1] .. "/port.tmp", "w"); f:write(port); f:close()
    os.rename(arg[1] .. "/port.tmp", arg[1] .. "/port")
    srv:settimeout(20)
    for _ = 1, tonumber(arg[2]) do
      local c = srv:accept()
      if not c then break end
      c:settimeout(5)
      local method, path = c:receive("*l"):match("^(%S+) (%S+)")
      local headers = {}
      while true do
        local l = c:receive("*l")
        if not l or l == "" then break end
        local k, v = l:match("^([^:]+):%s*(.*)$")
        headers[k:lower()] = v
      end
      local len = tonumber(headers["content-length"])
      local body = len and len > 0 and c:receive(len) or nil
      local head = "HTTP/1.1 %s\r\nContent-Type: application/json\r\nConnection: close\r\n"
      if path == "/redirect" then
        c:send(head:format("302 Found") .. "Location: /elsewhere\r\nContent-Length: 0\r\n\r\n")
      elseif path == "/big" then
        c:send(head:format("200 OK") .. "\r\n" .. string.rep("x", 5000))
      else
        local out = cjson.encode { method = method, path = path, headers = headers, body = body }
        c:send(head:format("200 OK") .. "Content-Length: " .. #out .. "\r\n\r\n" .. out)
      end
      c:close()
    end
  ]=]
  local f = assert(io.open(dir .. "/server.lua", "w"))
  f:write(script)
  f:close()
  local server = hostile.spawn(dir .. "/server.lua", { n })
  os.execute("rm -rf " .. dir)
  return server.url
end

describe("core transport", function()
  local e, token

  setup(function() e = emu.start() end)
  teardown(function() if e then e:stop() end end)
  before_each(function()
    e:reset() -- forgets issued tokens too
    token = e:token()
  end)

  describe("options", function()
    local bad = {
      { { timeout = "1" }, "'timeout'" },
      { { timeout = 0 }, "'timeout'" },
      { { connect_timeout = -1 }, "'connect_timeout'" },
      { { cafile = 1 }, "'cafile'" },
      { { capath = true }, "'capath'" },
      { { proxy = {} }, "'proxy'" },
      { { verify = "no" }, "'verify'" },
      { { user_agent = 2 }, "'user_agent'" },
      { { max_body = 0 }, "'max_body'" },
      { { max_body = "big" }, "'max_body'" },
      { { transport = "curl" }, "'transport'" },
    }
    for _, case in ipairs(bad) do
      it("raises naming " .. case[2], function()
        local args = { url = "http://127.0.0.1:1/" }
        for k, v in pairs(case[1]) do args[k] = v end
        local ok, msg = pcall(core.request, args)
        assert.is_false(ok)
        assert.truthy(tostring(msg):find(case[2], 1, true), msg)
      end)
    end
  end)

  describe("over libcurl", function()
    it("sends the default User-Agent naming the library, libcurl and Lua", function()
      assert.truthy(core.user_agent:match("^avalara%-hscode/%d+%.%d+%.%d+%S* libcurl/%d+%.%d+%.%d+ Lua"))
      local url = echo_server(2)
      local status, echo = core.request { url = url .. "/ua" }
      assert.equal(200, status)
      assert.equal(core.user_agent, echo.headers["user-agent"])
      status, echo = core.request { url = url .. "/ua", user_agent = "my-app/1.0" }
      assert.equal(200, status)
      assert.equal("my-app/1.0", echo.headers["user-agent"])
    end)

    it("sends method, headers and a JSON body without Expect: 100-continue", function()
      local url = echo_server(1)
      local status, echo = core.request {
        method = "put", url = url .. "/x", token = "tok-abc",
        headers = { ["X-Trace"] = "t1" }, body = { item = { description = string.rep("d", 2000) } },
      }
      assert.equal(200, status)
      assert.equal("PUT", echo.method)
      assert.equal("Bearer tok-abc", echo.headers.authorization)
      assert.equal("t1", echo.headers["x-trace"])
      assert.equal("application/json", echo.headers["content-type"])
      assert.equal("application/json", echo.headers.accept)
      assert.is_nil(echo.headers.expect)
      assert.equal(string.rep("d", 2000), cjson.decode(echo.body).item.description)
    end)

    it("never follows redirects", function()
      local url = echo_server(2)
      local status, err = core.request { url = url .. "/redirect" }
      assert.is_nil(status)
      assert.equal("http", err.kind)
      assert.equal(302, err.status)
      -- The server is still waiting for its second connection: nothing followed.
      local s2, echo = core.request { url = url .. "/after" }
      assert.equal(200, s2)
      assert.equal("/after", echo.path)
    end)

    it("refuses a body over max_body without Content-Length, in the write callback", function()
      local url = echo_server(2)
      local status, err = core.request { url = url .. "/big", max_body = 1000 }
      assert.is_nil(status)
      assert.equal("http", err.kind)
      assert.equal(200, err.status)
      assert.equal("response body exceeds max_body (1000 bytes)", err.message)
      assert.is_false(err.retryable)
      status, err = core.request { url = url .. "/big", max_body = 5000 }
      assert.is_nil(status) -- not JSON, but within the cap: a parse error with the body
      assert.equal("parse", err.kind)
      assert.equal(string.rep("x", 4096), err.body)
    end)

    it("refuses an oversized body early from its Content-Length", function()
      e:fault("definitions_sections", "oversized", 1, { size = 10 * 1024 * 1024 })
      local t0 = socket.gettime()
      local status, err = core.request { url = e.http_url .. SECTIONS, token = token, max_body = 4096 }
      assert.is_nil(status)
      assert.equal("http", err.kind)
      assert.equal(200, err.status)
      assert.truthy(err.message:find("exceeds max_body (4096 bytes)", 1, true))
      assert.truthy(socket.gettime() - t0 < 2)
    end)

    it("accepts a body at the default cap and below", function()
      e:fault("definitions_sections", "oversized", 1, { size = 3 * 1024 * 1024 })
      local status, body = core.request { url = e.http_url .. SECTIONS, token = token }
      assert.equal(200, status)
      assert.equal(3 * 1024 * 1024 - 12, #body.value)
    end)

    it("gives kind timeout within the timeout on a stalled response", function()
      e:fault("definitions_sections", "stall", 1, { stall_seconds = 5 })
      local t0 = socket.gettime()
      local status, err = core.request { url = e.http_url .. SECTIONS, token = token, timeout = 0.5 }
      local elapsed = socket.gettime() - t0
      assert.is_nil(status)
      assert.equal("timeout", err.kind)
      assert.is_true(err.retryable)
      assert.truthy(elapsed >= 0.45 and elapsed < 1.5, "elapsed " .. elapsed)
    end)

    it("gives kind transport when nothing listens", function()
      local s = assert(socket.bind("127.0.0.1", 0))
      local _, port = s:getsockname()
      s:close()
      local status, err = core.request { url = "http://127.0.0.1:" .. port .. "/", connect_timeout = 2 }
      assert.is_nil(status)
      assert.equal("transport", err.kind)
      assert.is_true(err.retryable)
      assert.truthy(err.message:find("onnect"), err.message)
    end)

    it("gives kind transport on a connection reset", function()
      -- Twice: libcurl itself retries once when a reused connection dies.
      e:fault("definitions_sections", "reset", 2)
      local status, err = core.request { url = e.http_url .. SECTIONS, token = token }
      assert.is_nil(status)
      assert.equal("transport", err.kind)
      assert.is_true(err.retryable)
    end)

    it("refuses non-HTTP URLs before any traffic", function()
      assert.has_error(function() core.request { url = "file:///etc/passwd" } end,
        "core.request: 'url' must be an http:// or https:// URL")
    end)
  end)

  describe("TLS", function()
    it("works over HTTPS with the emulator's CA", function()
      local status, body = core.request { url = e.https_url .. SECTIONS, token = token, cafile = e.ca_file }
      assert.equal(200, status)
      assert.is_table(body.value)
    end)

    it("works with capath (a hashed CA folder)", function()
      local dir = tmpdir()
      copy_file(e.ca_file, dir .. "/ca.pem")
      assert.is_true(run("openssl rehash " .. dir .. " >/dev/null 2>&1"))
      local status = core.request { url = e.https_url .. SECTIONS, token = token, capath = dir,
                                    cafile = dir .. "/ca.pem" }
      os.execute("rm -rf " .. dir)
      assert.equal(200, status)
    end)

    it("gives kind tls with the wrong CA", function()
      local dir = tmpdir()
      assert.is_true(run("cd " .. dir .. " && openssl req -x509 -newkey ec "
        .. "-pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout k.pem -out ca.pem -days 1 "
        .. "-subj /CN=wrong-ca >/dev/null 2>&1"))
      local status, err = core.request { url = e.https_url .. SECTIONS, token = token, cafile = dir .. "/ca.pem" }
      os.execute("rm -rf " .. dir)
      assert.is_nil(status)
      assert.equal("tls", err.kind)
      assert.is_false(err.retryable)
      assert.is_nil(err.status)
    end)

    it("gives kind tls with the system CAs only (verification on by default)", function()
      local status, err = core.request { url = e.https_url .. SECTIONS, token = token }
      assert.is_nil(status)
      assert.equal("tls", err.kind)
    end)

    it("connects without a CA when verify = false", function()
      local status, body = core.request { url = e.https_url .. SECTIONS, token = token, verify = false }
      assert.equal(200, status)
      assert.is_table(body.value)
    end)
  end)

  describe("connection reuse", function()
    -- A CA path no earlier test used: libcurl will not reuse a connection
    -- made with other TLS settings, so the first request must connect.
    local function fresh_ca()
      local dir = tmpdir()
      copy_file(e.ca_file, dir .. "/ca.pem")
      return dir
    end

    it("keeps one connection alive for 20 sequential requests", function()
      local dir = fresh_ca()
      local before = e:counters()
      for _ = 1, 20 do
        local status = core.request { url = e.https_url .. SECTIONS, token = token, cafile = dir .. "/ca.pem" }
        assert.equal(200, status)
      end
      local after = e:counters()
      os.execute("rm -rf " .. dir)
      assert.equal(20, after.requests - before.requests)
      assert.equal(1, after.connections - before.connections)
    end)

    it("shares connections between single requests and request_many", function()
      local dir = fresh_ca()
      local opts = { cafile = dir .. "/ca.pem", concurrency = 3 }
      local reqs = {}
      for i = 1, 12 do reqs[i] = { url = e.https_url .. SECTIONS, token = token } end
      local before = e:counters()
      local results = core.request_many(reqs, opts)
      local mid = e:counters()
      results[13] = core.request_many(reqs, opts)
      local status = core.request { url = e.https_url .. SECTIONS, token = token, cafile = dir .. "/ca.pem" }
      local after = e:counters()
      os.execute("rm -rf " .. dir)
      for i = 1, 12 do assert.equal(200, results[i].status) end
      assert.equal(200, status)
      assert.truthy(mid.connections - before.connections <= 3)
      assert.truthy(mid.connections - before.connections >= 1)
      assert.equal(mid.connections, after.connections)
      assert.equal(25, after.requests - before.requests)
    end)
  end)

  describe("request_many", function()
    it("returns results in input order, running requests concurrently", function()
      e:configure { latency_ms = 400 }
      local reqs = {}
      local codes = { "01", "02", "03", "04", "05", "06" }
      for i, code in ipairs(codes) do
        reqs[i] = { url = e.http_url .. "/api/v2/definitions/crossborder/US/" .. code, token = token }
      end
      local t0 = socket.gettime()
      local results = core.request_many(reqs, { concurrency = 6 })
      local elapsed = socket.gettime() - t0
      assert.equal(#codes, #results)
      for i, code in ipairs(codes) do
        assert.equal(200, results[i].status)
        assert.equal(code, results[i].body.value[1].hsCode:sub(1, 2))
        assert.is_string(results[i].headers["x-correlation-id"])
      end
      assert.truthy(elapsed < 6 * 0.4 * 0.6, "elapsed " .. elapsed)
    end)

    it("keeps the other results when items fail", function()
      e:fault("definitions_hierarchy", "500", 1)
      local s = assert(socket.bind("127.0.0.1", 0))
      local _, port = s:getsockname()
      s:close()
      local results = core.request_many({
        { url = e.http_url .. SECTIONS, token = token },
        { url = e.http_url .. "/api/v2/definitions/crossborder/US/0101/hierarchy", token = token },
        { url = "http://127.0.0.1:" .. port .. "/" },
        { url = e.http_url .. SECTIONS },
        { url = e.http_url .. "/api/v2/definitions/crossborder/US/01", token = token },
      }, { concurrency = 2 })
      assert.equal(5, #results)
      assert.equal(200, results[1].status)
      assert.equal("api", results[2].err.kind)
      assert.equal(500, results[2].err.status)
      assert.equal("transport", results[3].err.kind)
      assert.equal("oauth", results[4].err.kind)
      assert.equal(200, results[5].status)
      assert.equal("avalara: api error (status 500) InternalServerError", tostring(results[2].err):match("^[^:]+:[^:]+"))
    end)

    it("gives each stalled item kind timeout without losing the fast ones", function()
      e:fault("definitions_hierarchy", "stall", 2, { stall_seconds = 5 })
      local reqs = {
        { url = e.http_url .. "/api/v2/definitions/crossborder/US/0101/hierarchy", token = token },
        { url = e.http_url .. SECTIONS, token = token },
        { url = e.http_url .. "/api/v2/definitions/crossborder/US/0102/hierarchy", token = token },
      }
      local t0 = socket.gettime()
      local results = core.request_many(reqs, { concurrency = 3, timeout = 0.5 })
      assert.truthy(socket.gettime() - t0 < 1.5)
      assert.equal("timeout", results[1].err.kind)
      assert.equal(200, results[2].status)
      assert.equal("timeout", results[3].err.kind)
    end)

    it("returns an empty array for no requests and validates its arguments", function()
      assert.same({}, core.request_many({}))
      assert.has_error(function() core.request_many({ { url = 5 } }) end,
        "core.request_many: requests[1]: 'url' must be a string (got number)")
      assert.has_error(function() core.request_many({ "x" }) end,
        "core.request_many: requests[1] must be a table (got string)")
      assert.has_error(function() core.request_many({}, { concurrency = 0 }) end,
        "core.request_many: 'concurrency' must be a number >= 1")
      assert.has_error(function() core.request_many({}, { concurrency = 0 / 0 }) end,
        "core.request_many: 'concurrency' must be a number >= 1")
      -- larger values are capped (at 64), not refused
      assert.same({}, core.request_many({}, { concurrency = 1e12 }))
      assert.same({}, core.request_many({}, { concurrency = math.huge }))
      assert.has_error(function() core.request_many({}, { timeout = "x" }) end)
    end)
  end)

  describe("a Lua transport function", function()
    it("is called with the documented request shape", function()
      local seen
      local status, body, headers = core.request {
        method = "POST", url = "https://example.invalid/api", token = "tok-xyz",
        body = { a = 1 }, headers = { ["X-One"] = "1" }, timeout = 7,
        transport = function(req)
          seen = req
          return { status = 201, headers = { ["X-Correlation-Id"] = "cid-1", ["Content-Type"] = "application/json" },
                   body = '{"ok":true,"n":null}' }
        end,
      }
      assert.equal(201, status)
      assert.is_true(body.ok)
      assert.equal(cjson.null, body.n)
      assert.equal("cid-1", headers["x-correlation-id"])
      assert.equal("POST", seen.method)
      assert.equal("https://example.invalid/api", seen.url)
      assert.equal("Bearer tok-xyz", seen.headers.Authorization)
      assert.equal("application/json", seen.headers["Content-Type"])
      assert.equal("application/json", seen.headers.Accept)
      assert.equal("1", seen.headers["X-One"])
      assert.equal('{"a":1}', seen.body)
      assert.equal(7, seen.timeout)
    end)

    it("maps what it raises or returns to error kinds", function()
      local function via(fn)
        return core.request { url = "http://x.invalid/", transport = fn }
      end
      local _, err = via(function() error("boom") end)
      assert.equal("transport", err.kind)
      assert.truthy(err.message:find("boom", 1, true))
      _, err = via(function() error({ kind = "tls", message = "bad cert" }) end)
      assert.equal("tls", err.kind)
      _, err = via(function() return nil, "refused" end)
      assert.equal("transport", err.kind)
      assert.equal("refused", err.message)
      _, err = via(function() return nil, { kind = "timeout", message = "slow", retryable = true } end)
      assert.equal("timeout", err.kind)
      assert.is_true(err.retryable)
      _, err = via(function() return nil, { kind = "weird", message = "odd" } end)
      assert.equal("transport", err.kind)
      _, err = via(function() return nil end)
      assert.equal("transport function returned no response", err.message)
      _, err = via(function() return { status = "200" } end)
      assert.equal("transport function returned no valid status", err.message)
      _, err = via(function() return { status = 200, body = string.rep("y", 100) } end)
      assert.equal("parse", err.kind)
      local s, b = via(function() return { status = 204 } end)
      assert.equal(204, s)
      assert.is_nil(b)
    end)

    it("is subject to max_body", function()
      local _, err = core.request { url = "http://x.invalid/", max_body = 10,
        transport = function() return { status = 200, body = '{"a":"0123456789"}' } end }
      assert.equal("http", err.kind)
      assert.equal("response body exceeds max_body (10 bytes)", err.message)
    end)

    it("runs request_many sequentially, in order", function()
      local calls = {}
      local reqs = {}
      for i = 1, 4 do reqs[i] = { url = "http://x.invalid/" .. i } end
      local results = core.request_many(reqs, { concurrency = 4, transport = function(req)
        calls[#calls + 1] = req.url
        if req.url:sub(-1) == "3" then return nil, { kind = "timeout", message = "slow" } end
        return { status = 200, body = cjson.encode { url = req.url } }
      end })
      assert.same({ "http://x.invalid/1", "http://x.invalid/2", "http://x.invalid/3", "http://x.invalid/4" }, calls)
      assert.equal("http://x.invalid/2", results[2].body.url)
      assert.equal("timeout", results[3].err.kind)
      assert.equal("http://x.invalid/4", results[4].body.url)
    end)
  end)
end)
