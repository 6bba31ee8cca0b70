-- A credential is registered for redaction once (issue 27): a token string
-- in one of the Lua state's few sets, a token object in a set of its own,
-- which every request that sends it points to instead of copying it. These
-- check that the sets are shared and bounded, that a request keeps the set
-- it was built with when the token is renewed in place or closed (it still
-- sends, and redacts, the credential it was built with), that the last
-- reference frees the set, and that each set redacts every form a server
-- echoes, on a cache hit as on a miss. Run under valgrind or the ASan build,
-- the renewals and closes check the reference counting.
local core = require "avalara.core"
local emu = require "spec.support.emulator"
local hostile = require "spec.support.hostile"

local ID, KEY = "2000000001", "DEMO-LICENSE-KEY-0001"

local assert_no_form = hostile.assert_no_form

-- The server saw (and echoed) the credential: its error says so, redacted.
local function assert_echoed(label, err, secret)
  assert_no_form(label, err, secret)
  assert_no_form(label, err, "Bearer " .. secret)
  assert.equal(37, err.number, label)
  assert.truthy(err.request_id:find("[REDACTED]", 1, true), label .. ": the echo was not redacted")
end

describe("core: a credential registered once", function()
  local e, h

  setup(function()
    e = emu.start()
    h = hostile.start()
  end)
  teardown(function()
    if h then h:stop() end
    if e then e:stop() end
  end)

  local function echo(token)
    local _, err = core.request { url = h.url .. "/api-echo", token = token }
    return err
  end

  it("a token string: one set however many requests send it, a few per state", function()
    local token = "shared/tok+en=" .. tostring(os.time())
    local before = core.transport_stats()
    for i = 1, 3 do assert_echoed("call " .. i, echo(token), token) end
    local after = core.transport_stats()
    assert.truthy(after.credentials >= 1 and after.credentials <= 4)
    assert.truthy(after.secret_sets - before.secret_sets <= 1, "a set per request")
    -- eight more strings: the state keeps four, each redacts on its first use and on the next
    for i = 1, 8 do
      local other = ('o"th&er<' .. i .. ">")
      assert_echoed("other " .. i, echo(other), other)
      assert_echoed("other " .. i .. " again", echo(other), other)
    end
    assert.equal(4, core.transport_stats().credentials)
    assert_echoed("the first one, dropped and made again", echo(token), token)
  end)

  it("a shared set redacts the forms servers echo: raw, decoded, JSON- and HTML-escaped", function()
    for _, token in ipairs { 's3cr+t/with=chars&more', 'pa"ss\\word 50% off', "x+y/z==" } do
      for _, route in ipairs { "/echo", "/echo-decoded", "/echo-html" } do
        for _, call in ipairs { "first", "second" } do
          local _, err = core.request { url = h.url .. route, token = token }
          local label = route .. ", " .. call .. " call"
          assert_no_form(label, err, token)
          assert_no_form(label, err, "Bearer " .. token)
          assert.truthy(err.body:find("[REDACTED]", 1, true), label .. ": nothing was echoed")
        end
      end
    end
  end)

  it("the set a request holds outlives the cache's: a prepared exchange after eight other strings", function()
    local token = "kept 50% of/it"
    local ex = core.prepare_request { url = h.url .. "/api-echo", token = token }
    for i = 1, 8 do echo("evicting-" .. i) end
    assert.equal("Bearer " .. token, ex:request().headers.Authorization)
    local _, err = ex:perform()
    assert_echoed("prepared before the eviction", err, token)
  end)

  -- How many idle libcurl handles keep an Authorization line in their header list. (A scan of the
  -- process's memory would also find libcurl's own request buffer, freed unwiped: docs/core.md,
  -- "What is not ours to wipe".)
  local function kept() return core.transport_stats().kept_credentials end

  it("a token closed or renewed in place: the idle libcurl handles keep no line of its credential", function()
    local url = e.http_url .. "/api/v2/definitions/crossborder/sections"
    local function grant()
      return assert(core.client_credentials { token_url = e.http_url .. "/connect/token", client_id = ID,
                                              client_secret = KEY, scope = "hs-code-classification" })
    end
    local tok = grant()
    assert.equal(200, (core.request { url = url, token = tok }))
    -- an idle handle keeps the last transfer's header lines (sent again as they are)
    assert.equal(1, kept())
    tok:close()
    collectgarbage()
    assert.equal(0, kept(), "token:close() left its Authorization line in an idle handle")
    -- renewed in place: the API request on a handle of its own (another user agent), which the
    -- renewal's grant does not use
    tok = grant()
    assert.equal(200, (core.request { url = url, token = tok, user_agent = "kept-handle" }))
    assert.equal(1, kept())
    assert(tok:refresh())
    assert.equal(0, kept(), "a renewal left the old Authorization line in an idle handle")
    tok:close()
    -- the FFI binding (LuaJIT) copies the credential into its request: the same handles, the same wipe
    local binding = type(jit) == "table" and require "avalara.ffi"
    if binding then
      tok = grant()
      assert.equal(200, (binding.request { url = url, token = tok }))
      assert.equal(1, kept())
      tok:close()
      assert.equal(0, kept(), "the FFI binding's request left the line after close()")
    end
  end)

  it("a token object renewed in place: a request built before sends and redacts the old credential", function()
    local live = core.transport_stats().secret_sets
    local tok = assert(core.client_credentials { token_url = e.http_url .. "/connect/token", client_id = ID,
                                                 client_secret = KEY, scope = "hs-code-classification" })
    local old = tok:access_token()
    local ex = core.prepare_request { url = h.url .. "/api-echo", token = tok }
    assert.equal(live + 1, core.transport_stats().secret_sets)
    assert(tok:refresh())
    local new = tok:access_token()
    assert.are_not.equal(old, new)
    -- the exchange's set is the old one, untouched by the renewal
    assert.equal("Bearer " .. old, ex:request().headers.Authorization)
    local _, err = ex:perform()
    assert_echoed("built before the renewal", err, old)
    assert.equal(live, core.transport_stats().secret_sets, "the old set outlived its last request")
    -- the renewed token: a new set, and the API takes the new credential
    assert_echoed("after the renewal", echo(tok), new)
    local status = core.request { url = e.http_url .. "/api/v2/definitions/crossborder/sections", token = tok }
    assert.equal(200, status)
    -- closed while an exchange holds its set: the exchange still sends and redacts it; then all is freed
    local ex2 = core.prepare_request { url = h.url .. "/api-echo", token = tok }
    tok:close()
    assert.has_error(function() echo(tok) end, "attempt to use a closed token")
    _, err = ex2:perform()
    assert_echoed("built before the close", err, new)
    assert.equal(live, core.transport_stats().secret_sets, "a set outlived the token and its requests")
  end)

  it("an unfit token string is refused as before, and never kept", function()
    local n = core.transport_stats().secret_sets
    local _, err = core.request { url = h.url .. "/api-echo", token = "bad\r\ntoken" }
    assert.equal("transport", err.kind)
    assert.truthy(err.message:find("control character", 1, true))
    _, err = core.request { url = h.url .. "/api-echo", token = "" }
    assert.truthy(err.message:find("empty", 1, true))
    assert.equal(n, core.transport_stats().secret_sets)
  end)
end)
