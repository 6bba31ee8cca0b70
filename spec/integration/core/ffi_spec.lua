-- The LuaJIT FFI binding (avalara.ffi; issue 27, item 2) gives what the
-- classic binding gives: the same exchanges through `core.request` and
-- `binding.request` against the emulator return equal results, field by
-- field, tostring included (the request id aside, which differs per
-- request): a success, every API error shape of the emulator's faults, a
-- control character in a token or a header, a non-loopback http URL (both
-- raise the same words), a body over max_body, a 2xx that is not JSON, a
-- timeout, a table body, a token object. No error carries the token. The
-- prepared exchange's raw path (ex:wire() sent over a socket, the answer fed
-- back with status/header/body, ex:conclude()) gives the same too. Under
-- Lua 5.4 the binding does not load and the client's transport is classic.
local core = require "avalara.core"
local emu = require "spec.support.emulator"
local socket = require "socket"

local SECTIONS = "/api/v2/definitions/crossborder/sections"
local LUAJIT = type(jit) == "table"
-- headers that differ between two answers to the same request
local VOLATILE = { date = true, ["x-correlation-id"] = true, ["x-request-id"] = true }

local function pack(...) return { n = select("#", ...), ... } end

-- A result as comparable data: the error's fields (request_id out) and its
-- tostring (the request id out), a body's tables as they are, headers
-- without the volatile ones.
local function comparable(r)
  local out = { n = r.n }
  for i = 1, r.n do
    local v = r[i]
    if core.is_error(v) then
      local t = {}
      for k, x in pairs(v) do if k ~= "request_id" then t[k] = x end end
      -- libcurl's timing in a timeout's words
      t.message = v.message:gsub("after %d+ milliseconds", "after N milliseconds")
      t.tostring = tostring(v):gsub(" %[request id [^%]]*%]", ""):gsub("after %d+ milliseconds", "after N milliseconds")
      t.has_request_id = v.request_id ~= nil
      t.is_error = true
      v = t
    elseif i == 3 and type(v) == "table" then
      local h = {}
      for k, x in pairs(v) do if not VOLATILE[k] then h[k] = x end end
      v = h
    end
    out[i] = v
  end
  return out
end

local function no_secret(r, token)
  for i = 1, r.n do
    if core.is_error(r[i]) then
      for _, text in ipairs { tostring(r[i]), tostring(r[i].message), tostring(r[i].body),
        tostring(r[i].error_description) } do
        assert.is_nil(text:find(token, 1, true), "token in error: " .. text)
      end
    end
  end
end

describe("the FFI binding (avalara.ffi)", function()
  if not LUAJIT then
    it("does not load outside LuaJIT; the client's transport is then classic", function()
      assert.is_false(require "avalara.ffi")
      local _, why = require("avalara.ffi.cdef").load()
      assert.matches("needs LuaJIT", why)
      assert.equal("classic", require("avalara.transport").new { options = {} }:info().binding)
      local ok, err = pcall(require("avalara").new, { environment = "local", account_id = "1", license_key = "k",
        binding = "ffi" })
      assert.is_false(ok)
      assert.matches("'binding' \"ffi\" is not available here: the FFI binding needs LuaJIT", err, 1, true)
    end)
    return
  end

  local binding = require "avalara.ffi"
  local e, token, url

  setup(function()
    e = emu.start()
    url = e.http_url .. SECTIONS
  end)
  teardown(function() if e then e:stop() end end)
  before_each(function()
    e:reset()
    token = e:token()
  end)

  -- args() is called once per binding (a fresh table each time); arm() before each call
  local function same(args, arm)
    if arm then arm() end
    local classic = pack(core.request(args()))
    if arm then arm() end
    local ffi = pack(binding.request(args()))
    no_secret(classic, token)
    no_secret(ffi, token)
    assert.same(comparable(classic), comparable(ffi))
    return classic, ffi
  end

  local function raises_same(args)
    local ok1, m1 = pcall(core.request, args())
    local ok2, m2 = pcall(binding.request, args())
    assert.is_false(ok1)
    assert.is_false(ok2)
    assert.equal(m1, m2)
    return m1
  end

  it("chooses by the client's option, then AVALARA_BINDING", function()
    assert.error_matches(function()
      require("avalara").new { environment = "local", account_id = "1", license_key = "k", binding = "fast" }
    end, "'binding' must be \"ffi\" or \"classic\"", 1, true)
    local lua = os.getenv("SPEC_LUA") or "luajit"
    local script = "local t = require('avalara.transport'); io.write(t.new{ options = {} }:info().binding, ' ', "
      .. "t.new{ options = {}, binding = 'ffi' }:info().binding)"
    for env, want in pairs { classic = "classic ffi", ffi = "ffi ffi", [""] = "ffi ffi" } do
      local p = assert(io.popen(("AVALARA_BINDING=%s %s -e \"%s\" 2>&1"):format(env, lua, script)))
      local out = p:read("*a")
      p:close()
      assert.equal(want, out, "AVALARA_BINDING=" .. env)
    end
  end)

  it("loads, over the same core.so as the classic binding, and the client's transport uses it", function()
    assert.is_table(binding)
    assert.equal(package.searchpath("avalara.core", package.cpath), binding.abi.path)
    assert.equal("ffi", require("avalara.transport").new { options = {} }:info().binding)
    assert.equal("classic", require("avalara.transport").new { options = {}, binding = "classic" }:info().binding)
  end)

  it("a success: status, the decoded body and the headers", function()
    local c = same(function() return { url = url, token = token } end)
    assert.equal(200, c[1])
    assert.is_table(c[2])
    assert.equal(3, c.n)
  end)

  it("a token object, a table body, headers with numbers, a method in lower case", function()
    local tok = assert(core.client_credentials { token_url = e.http_url .. "/connect/token",
      client_id = "2000000001", client_secret = "DEMO-LICENSE-KEY-0001", scope = "hs-code-classification" })
    same(function() return { url = url, token = tok } end)
    same(function()
      return { method = "post", url = url, token = token, body = { a = { 1, 2 }, b = "x" },
        headers = { ["X-Count"] = 3, Accept = "application/json" } }
    end)
    same(function() return { method = "HEAD", url = url, token = token } end)
  end)

  it("response_headers = false: status and body only; a wrong type raises the same words", function()
    local c = same(function() return { url = url, token = token, response_headers = false } end)
    assert.equal(2, c.n)
    same(function() return { url = url .. "x", token = token, response_headers = false } end)
    local ex = binding.prepare_request { url = url, token = token, response_headers = false }
    assert.equal(2, select("#", ex:perform()))
    raises_same(function() return { url = url, token = token, response_headers = 1 } end)
  end)

  it("a token object read at every call: closed (or renewed in place) after a call, as the classic binding", function()
    local tok = assert(core.client_credentials { token_url = e.http_url .. "/connect/token",
      client_id = "2000000001", client_secret = "DEMO-LICENSE-KEY-0001", scope = "hs-code-classification" })
    assert.equal(200, (binding.request { url = url, token = tok }))
    -- the emulator forgets every token: only a renewed one is accepted
    e:reset()
    local fresh = assert(core.client_credentials { token_url = e.http_url .. "/connect/token",
      client_id = "2000000001", client_secret = "DEMO-LICENSE-KEY-0001", scope = "hs-code-classification" })
    local old = tok:authorization()
    assert.equal(401, (select(2, binding.request { url = url, token = tok })).status)
    tok:close()
    assert.matches("closed token", raises_same(function() return { url = url, token = tok } end))
    same(function() return { url = url, token = fresh } end)
    assert.is_string(old)
  end)

  for _, f in ipairs {
    { name = "500" }, { name = "502" }, { name = "503", extra = { retry_after = 1 } },
    { name = "429", extra = { retry_after = 0 } }, { name = "reset", count = 2 }, { name = "truncated" },
    { name = "invalid_json" }, { name = "html" }, { name = "oversized", extra = { size = 20000 } },
    { name = "stall", extra = { stall_seconds = 2 } },
  } do
    it("the emulator's fault " .. f.name, function()
      local c, ffi = same(function() return { url = url, token = token, timeout = 1, max_body = 10000 } end,
        function() e:fault("definitions_sections", f.name, f.count or 1, f.extra) end)
      assert.is_nil(c[1])
      assert.equal(c[2].kind, ffi[2].kind)
      assert.equal(c[2].request_id ~= nil, ffi[2].request_id ~= nil)
    end)
  end

  it("a token the server does not know, an expired one, a missing one", function()
    local c = same(function() return { url = url, token = "not-a-token-the-server-issued" } end)
    assert.equal("oauth", c[2].kind)
    same(function() return { url = url, token = token } end,
      function() assert(e:request("POST", "/_emulator/tokens/expire")) end)
    same(function() return { url = url } end)
  end)

  it("a control character or a NUL byte in a token or a header value: refused, nothing sent", function()
    local c = same(function() return { url = url, token = token .. "\r\nX-Evil: 1" } end)
    assert.matches("request not sent", c[2].message)
    same(function() return { url = url, token = token, headers = { ["X-A"] = "a\nb" } } end)
    same(function() return { url = url, token = token, headers = { ["X-A"] = "a\0b" } } end)
    same(function() return { url = url, authorization = "Bearer " .. token .. "\1" } end)
    same(function() return { url = url, token = "" } end)
  end)

  it("wrong arguments raise the same words (a non-loopback http URL among them)", function()
    assert.matches("'url' ", raises_same(function() return { url = "http://example.com/x", token = token } end))
    raises_same(function() return { url = 42 } end)
    raises_same(function() return { url = url, method = "GE T" } end)
    raises_same(function() return { url = url, token = {} } end)
    raises_same(function() return { url = url, headers = { ["Bad Name"] = "v" } } end)
    raises_same(function() return { url = url, body = 42 } end)
    raises_same(function() return { url = url, body = { f = print } } end)
    raises_same(function() return { url = url, timeout = -1 } end)
    raises_same(function() return { url = url, max_body = "big" } end)
    raises_same(function() return { url = url, user_agent = "a\r\nb" } end)
    raises_same(function() return nil end)
  end)

  it("a transport function: the classic binding runs it", function()
    local function transport() return { status = 200, headers = { ["Content-Type"] = "application/json" },
      body = '{"a":1}' } end
    same(function() return { url = url, token = token, transport = transport } end)
  end)

  -- Sends ex:wire() over a socket, feeds the answer back, concludes.
  local function over_socket(ex)
    local bytes = assert(ex:wire())
    local s = assert(socket.tcp())
    s:settimeout(5)
    assert(s:connect("127.0.0.1", e.port))
    assert(s:send(bytes))
    local line = assert(s:receive("*l"))
    ex:status(tonumber(line:match("^HTTP/1%.%d (%d+)")))
    local length, chunked
    while true do
      local h = assert(s:receive("*l"))
      if h == "" then break end
      local name, value = h:match("^([^:]+):%s*(.*)$")
      ex:header(name, value)
      if name:lower() == "content-length" then length = tonumber(value) end
      if name:lower() == "transfer-encoding" and value:lower():find("chunked") then chunked = true end
    end
    if chunked then
      while true do
        local size = tonumber(assert(s:receive("*l")):match("^%x+"), 16)
        if size == 0 then break end
        ex:body(assert(s:receive(size)))
        s:receive("*l")
      end
    elseif length and length > 0 then
      ex:body(assert(s:receive(length)))
    end
    s:close()
    return ex:conclude()
  end

  it("a prepared exchange whose token is renewed in place or closed before its answer: as the classic one", function()
    local function grant()
      return assert(core.client_credentials { token_url = e.http_url .. "/connect/token",
        client_id = "2000000001", client_secret = "DEMO-LICENSE-KEY-0001", scope = "hs-code-classification" })
    end
    -- another coroutine renews the token while this exchange's transport waits; the transport then
    -- fails quoting the credential it sent: redacted, as by the classic exchange
    local tok = grant()
    local sent = tok:access_token()
    local f, c = binding.prepare_request { url = url, token = tok }, core.prepare_request { url = url, token = tok }
    assert(tok:refresh())
    local fail = function() return { kind = "transport", message = "peer said: Bearer " .. sent } end
    local fr, cr = pack(f:finish(nil, fail())), pack(c:finish(nil, fail()))
    assert.same(comparable(cr), comparable(fr))
    no_secret(fr, sent)
    -- closed meanwhile: nil, err (no raise), as the classic exchange
    f, c = binding.prepare_request { url = url, token = tok }, core.prepare_request { url = url, token = tok }
    sent = tok:access_token()
    tok:close()
    fr, cr = pack(f:finish(nil, fail())), pack(c:finish(nil, fail()))
    assert.same(comparable(cr), comparable(fr))
    no_secret(fr, sent)
  end)

  it("a transport that moves the bytes gets the method, URL and timeout as the request was built", function()
    local lua_transport = require "avalara.transport.lua"
    local seen
    local function transport() error("the runner runs, not the function") end
    lua_transport.register(transport, function(ex, bytes, u, method, timeout)
      seen = { bytes = bytes, url = u, method = method, timeout = timeout }
      ex:status(200)
      ex:header("Content-Type", "application/json")
      ex:body("{}")
      return true
    end)
    local ex = binding.prepare_request { method = "head", url = url, token = token }
    local status = lua_transport.run(transport, ex, { url = url })
    assert.equal(200, status)
    assert.same({ url = url, method = "HEAD", timeout = 30 }, { url = seen.url, method = seen.method,
      timeout = seen.timeout })
    assert.matches("^HEAD ", seen.bytes)
    -- a caller's framing headers do not reach the wire (one Host, one Content-Length)
    ex = binding.prepare_request { method = "POST", url = url, token = token, body = "abc",
      headers = { ["Content-Length"] = "0", Host = "evil", ["Transfer-Encoding"] = "chunked" } }
    lua_transport.run(transport, ex, { url = url })
    assert.is_nil(seen.bytes:find("evil", 1, true))
    assert.is_nil(seen.bytes:find("chunked", 1, true))
    local _, lengths = seen.bytes:gsub("\r\n[Cc]ontent%-[Ll]ength:", "")
    assert.equal(1, lengths)
  end)

  it("the raw path: ex:wire(), the answer fed back, ex:conclude(), as core.request", function()
    local function args() return { url = url, token = token } end
    local c = pack(core.request(args()))
    local f = pack(over_socket(binding.prepare_request(args())))
    assert.same(comparable(c), comparable(f))
    c = pack(core.request { url = url, token = "unknown" })
    f = pack(over_socket(binding.prepare_request { url = url, token = "unknown" }))
    assert.same(comparable(c), comparable(f))
    -- a failure of one's own, redacted; a refused request's wire is the classic request()'s error
    local ex = binding.prepare_request(args())
    ex:fail("timeout", "timed out talking to " .. token)
    local r = pack(ex:conclude())
    assert.equal("timeout", r[2].kind)
    no_secret(r, token)
    local bad = binding.prepare_request { url = url, token = token .. "\n" }
    local w, werr = bad:wire()
    local _, rerr = core.prepare_request { url = url, token = token .. "\n" }:request()
    assert.is_nil(w)
    assert.same(comparable(pack(nil, rerr)), comparable(pack(nil, werr)))
    assert.error_matches(function() ex:wire() end, "finished or closed exchange")
  end)

  it("the classic exchange's methods: request(), finish(), perform(), tostring", function()
    local ex = binding.prepare_request { url = url, token = token }
    local cx = core.prepare_request { url = url, token = token }
    assert.same(cx:request(), ex:request())
    assert.equal(tostring(cx), tostring(ex))
    local resp = { status = 200, headers = { ["Content-Type"] = "application/json" }, body = '{"a":[1,2]}' }
    assert.same(comparable(pack(cx:finish(resp))), comparable(pack(ex:finish(resp))))
    local c = pack(core.prepare_request { url = url, token = token }:perform())
    local f = pack(binding.prepare_request { url = url, token = token }:perform())
    assert.same(comparable(c), comparable(f))
  end)
end)
