-- Issue 20, finding 8 (repro rawcapture.py + ua_crlf.lua, crlf_fields.lua):
-- a CR or LF in `user_agent` added request headers of its own, and values
-- that reach a header or the request line (a token, a header value, a URL)
-- were only checked for line breaks in some places. Now: options (user
-- agent, proxy) and grant URLs raise, naming the option; values a call
-- carries (a token from a store, a header from the caller, a URL built
-- from a server's link) give nil, err and nothing is sent, over libcurl, a
-- Lua transport function, request_many and exchange:request(). A real
-- listener (spec/support/capture_server.lua) shows what reached the wire.
local core = require "avalara.core"
local cjson = require "cjson"
local hostile = require "spec.support.hostile"

local CRLF_VALUES = { "v\r\nX-Injected: yes", "v\nX-Injected: yes", "v\rX-Injected: yes", "v\0X-Injected: yes",
  "v\27[31m" }

describe("header injection (issue 20, finding 8)", function()
  local h
  setup(function() h = hostile.spawn("spec/support/capture_server.lua") end)
  teardown(function() if h then h:stop() end end)

  -- How many requests reached the listener so far.
  local function seen()
    local status, body = core.request { url = h.url .. "/count" }
    assert.equal(200, status)
    return body.n
  end

  local function refused(label, status, err)
    assert.is_nil(status, label)
    assert.is_table(err, label)
    assert.equal("transport", err.kind, label)
    assert.is_false(err.retryable, label)
    assert.truthy(err.message:find("^request not sent: "), label .. ": " .. tostring(err.message))
  end

  describe("options", function()
    it("a user_agent with a control character raises naming it; none reaches the wire (ua_crlf.lua)", function()
      local before = seen()
      for _, v in ipairs { "myapp/1.0\r\nX-Injected: yes\r\nHost: evil.example", "a\nb", "a\rb", "a\27b" } do
        local ok, err = pcall(core.request, { url = h.url .. "/x", user_agent = v })
        assert.is_false(ok)
        assert.truthy(tostring(err):find("bad option 'user_agent'", 1, true), tostring(err))
        assert.truthy(tostring(err):find("control characters", 1, true))
      end
      assert.equal(before, seen())
    end)

    it("a user_agent without one goes out as one header line, as given", function()
      local status, body = core.request { url = h.url .. "/x", user_agent = "myapp/1.0 (tab\there)" }
      assert.equal(200, status)
      assert.truthy(body.raw:find("\r\nUser-Agent: myapp/1.0 (tab\there)\r\n", 1, true))
      assert.is_nil(body.raw:find("avalara-hscode/", 1, true))
    end)

    it("a proxy with a space or a control character raises naming it", function()
      for _, v in ipairs { "http://127.0.0.1:1\r\nX: y", "http://127.0.0.1:1/ x", "http://u:p\n@127.0.0.1:1" } do
        local ok, err = pcall(core.request, { url = h.url .. "/x", proxy = v })
        assert.is_false(ok)
        assert.truthy(tostring(err):find("bad option 'proxy'", 1, true), tostring(err))
      end
    end)

    it("a grant's token_url or revocation_url with a space or a control character raises naming the field", function()
      for _, field in ipairs { "token_url", "revocation_url" } do
        for _, bad in ipairs { h.url .. "/t\r\nX-Injected: yes", h.url .. "/t x" } do
          local args = { token_url = h.url .. "/t", client_id = "id", client_secret = "s" }
          args[field] = bad
          local ok, err = pcall(core.client_credentials, args)
          assert.is_false(ok)
          assert.truthy(tostring(err):find("field '" .. field .. "' must not contain spaces or control characters",
            1, true), tostring(err))
        end
      end
    end)
  end)

  describe("values a call carries give nil, err and send nothing", function()
    it("a token with a control character, an empty token (crlf_fields.lua: token CRLF)", function()
      local before = seen()
      for _, tok in ipairs { "tok\r\nX-Injected: yes", "tok\nX-Injected: yes", "tok\0x", "tok\127", "" } do
        local status, err = core.request { url = h.url .. "/x", token = tok }
        refused(("token %q"):format(tok), status, err)
        assert.truthy(err.message:find("credential", 1, true))
        assert.is_nil(err.message:find("Injected", 1, true))
      end
      local status, err = core.request { url = h.url .. "/x", authorization = "Bearer a\r\nX-Injected: yes" }
      refused("authorization", status, err)
      assert.equal(before, seen())
    end)

    it("a header value with a control character, named in the message, never the value", function()
      local before = seen()
      for _, v in ipairs(CRLF_VALUES) do
        local status, err = core.request { url = h.url .. "/x", headers = { ["X-Trace"] = v } }
        refused(("header %q"):format(v), status, err)
        assert.truthy(err.message:find("'X-Trace'", 1, true) or err.message:find("NUL", 1, true), err.message)
        assert.is_nil(err.message:find("Injected", 1, true))
      end
      assert.equal(before, seen())
      -- a bad header name is the caller's code: it raises
      assert.has_error(function() core.request { url = h.url .. "/x", headers = { ["X-A\r\nB"] = "v" } } end)
    end)

    it("a URL with a space or a control character (a server's link, say)", function()
      local before = seen()
      for _, path in ipairs { "/a b", "/a\r\nX-Injected: yes", "/a\tb", "/a\0b", "/a\127" } do
        local status, err = core.request { url = h.url .. path }
        refused(("url %q"):format(path), status, err)
        assert.truthy(err.message:find("URL", 1, true))
      end
      assert.equal(before, seen())
    end)

    it("through a Lua transport function: it is never called", function()
      local called = 0
      local status, err = core.request { url = h.url .. "/x", token = "tok\r\nX-Injected: yes",
        transport = function() called = called + 1; return { status = 200, body = "{}" } end }
      refused("transport function", status, err)
      assert.equal(0, called)
    end)

    it("exchange:request() gives nil, err instead of the request table", function()
      local ex = core.prepare_request { url = h.url .. "/x", headers = { ["X-A"] = "v\r\nX-Injected: yes" } }
      local req, err = ex:request()
      refused("exchange:request", req, err)
      ex:close()
    end)

    it("in request_many, only the unfit request fails", function()
      local before = seen()
      local out = core.request_many {
        { url = h.url .. "/ok1" },
        { url = h.url .. "/bad", token = "tok\r\nX-Injected: yes" },
        { url = h.url .. "/ok2", headers = { ["X-A"] = "fine" } },
      }
      assert.equal(200, out[1].status)
      refused("request_many", out[2].status, out[2].err)
      assert.equal(200, out[3].status)
      assert.equal(before + 2, seen())
      for _, r in ipairs { out[1], out[3] } do assert.is_nil(r.body.raw:find("Injected", 1, true)) end
    end)

    it("a fit request goes out with its headers intact", function()
      local status, body = core.request { url = h.url .. "/x?q=%0D%0A", token = "tok-1",
        headers = { ["X-Trace"] = "a\tb c" } }
      assert.equal(200, status)
      assert.truthy(body.raw:find("^GET /x%?q=%%0D%%0A HTTP/1.1\r\n"))
      assert.truthy(body.raw:find("\r\nAuthorization: Bearer tok-1\r\n", 1, true))
      assert.truthy(body.raw:find("\r\nX-Trace: a\tb c\r\n", 1, true))
      assert.is_nil(cjson.encode(body):find("Injected", 1, true))
    end)
  end)
end)
