-- The ```lua examples of README.md and docs/*.md run as written against one
-- emulator, and print what the page says they print (and never a secret).
-- spec/support/readme.lua finds a block by its section's heading in any of
-- those files; the last test fails on a block that no spec runs.
describe("README and docs/ examples", function()
  local emu = require "spec.support.emulator"
  local readme = require "spec.support.readme"
  local e

  setup(function() e = emu.start() end)
  teardown(function() if e then e:stop() end end)
  before_each(function() e:reset() end)

  local function no_secret(printed, secret)
    for _, line in ipairs(printed) do
      assert.falsy(line:find(secret, 1, true))
      assert.falsy(line:find(("%x"):rep(32)))
    end
  end

  it("README, Example: classifies the t-shirt, prints its code and hierarchy, and no secret", function()
    local source, file = readme.block("Example")
    assert.equal("README.md", file)
    assert.truthy(#source:gsub("[^\n]", "") <= 20, "the README's example is at most 20 lines")
    local printed = readme.run(source, e.http_url)
    assert.same({ "1001-TS-1-US\tCLASSIFIED\t610910", "61\tApparel", "6109",
      "610910\tT-shirts, singlets and other vests; of cotton, knitted or crocheted" },
      { printed[1], printed[2] and printed[2]:match("^61\t%a+"), printed[3] and printed[3]:match("^6109"), printed[4] })
    assert.equal(4, #printed)
    no_secret(printed, "DEMO-LICENSE-KEY-0001")
  end)

  it("Using the C core: classifies the t-shirt and prints no secret", function()
    local printed = readme.run(readme.block("Using the C core"), e.http_url)
    assert.truthy(printed[1]:match("^avalara%.token %(Bearer, scope hs%-code%-classification"))
    assert.truthy(printed[2]:match("^610910\tT%-shirts"))
    no_secret(printed, "DEMO-LICENSE-KEY-0001")
  end)

  it("Using the library: classifies, batches, lists, looks up and prints no secret", function()
    local printed = readme.run(readme.block("Using the library"), e.http_url)
    assert.same({ "610910\tT-shirts, singlets and other vests; of cotton, knitted or crocheted",
      "1\t691110", "2\t871200", "2\t0", "86\t86", "52\tCotton", "4" }, { (table.unpack or unpack)(printed, 1, 7) })
    assert.truthy(printed[8]:match("^avalara token %(Bearer, scope hs%-code%-classification, expires at "))
    assert.equal(8, #printed)
    no_secret(printed, "DEMO-LICENSE-KEY-0001")
  end)

  it("The Items flow: classifies for three countries, reads codes, verifies, runs a catalog", function()
    e:configure { classification_delay = 0.2 }
    local printed = readme.run(readme.block("The Items flow"), e.http_url)
    assert.same({ "2\t0", "DE\tTARIC\t610910", "JP\tHS\t610910", "US\tHTS\t610910", "691110", "24", "1\t0",
      "150\t150\t150" }, printed)
  end)

  it("Partner integrations: connects, classifies on the customer's behalf, lists, disconnects", function()
    local printed = readme.run(readme.block("Partner integrations"), e.http_url)
    assert.same({ "connected\t1001\tCompanyUser", "610910", "1", "true" }, printed)
    assert.equal(1, e:counters().routes.oauth_revoke)
    no_secret(printed, "demo-partner-secret")
  end)

  -- docs/core.md's reference fragments continue its opening block (core, base, ID, KEY) with a token
  -- of the demo account: those that need nothing from a caller run here, each on its own, and print
  -- what the page says where the answer is fixed. The others need a caller's context: a callback's
  -- `code`, a saved refresh token, `my_transport`, a grant's arguments (`...`).
  local CORE_NEEDS_CONTEXT = {
    ["`core.authorization_code{token_url, client_id, client_secret, code, redirect_uri, code_verifier?, ...}` 1"] = true,
    ["`core.refresh_token{token_url, client_id, client_secret, refresh_token, scope?, ...}` 1"] = true,
    ["`core.revoke{url, client_id, client_secret?, token, token_type_hint?, ...}` 1"] = true,
    ["Non-blocking: `core.multi` 1"] = true,
    ["Exchanges (`avalara.exchange`) 1"] = true,
  }
  local CORE_PRINTS = {
    ["`core.generate_token{url, client_id, client_secret, ...}` 1"] = { "253402300799" },
    ["`core.pkce([verifier])` 1"] = { "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk\tE9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM" },
    ["`core.hmac_sha256(key, message)` 1"] = { "f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8" },
    ["Exchanges (`avalara.exchange`) 2"] = { "200\ttrue" },
    ["`core.error{kind, message, ...}` and `core.is_error(v)` 1"] =
      { "true\tfalse", "avalara: api error (status 409) Conflict: taken [request id r1]" },
    ["`core.protocol` 1"] = { "a=1+%2B&b=2", "253402300799.997", "oauth\tinvalid_token\taccess_denied",
      "nil\tinvalid number at byte 3", "1" },
  }

  it("docs/core.md: the reference fragments that need no caller's context run, and print what they say", function()
    local core = require "avalara.core"
    local blocks, count, ran = readme.blocks("docs/core.md"), {}, 0
    assert.truthy(blocks[1].source:find('local base = "http://127.0.0.1:18080"', 1, true))
    for i = 3, #blocks do -- 1: the opening block; 2: "Using the C core", run above
      local b = blocks[i]
      count[b.heading] = (count[b.heading] or 0) + 1
      local key = b.heading .. " " .. count[b.heading]
      if not CORE_NEEDS_CONTEXT[key] then
        local token = assert(core.client_credentials { token_url = e.http_url .. "/connect/token",
          client_id = "2000000001", client_secret = "DEMO-LICENSE-KEY-0001" })
        local challenge = select(2, core.pkce())
        local source = ("local core, base, ID, KEY, token, challenge = ...\n") .. b.source
        local printed = {}
        local env = setmetatable({ print = function(...)
          local parts = {}
          for k = 1, select("#", ...) do parts[k] = tostring((select(k, ...))) end
          printed[#printed + 1] = table.concat(parts, "\t")
        end }, { __index = _G })
        local chunk = assert((loadstring or load)(source, "=docs/core.md:" .. b.line, "t", env))
        if setfenv then setfenv(chunk, env) end
        chunk(core, e.http_url, "2000000001", "DEMO-LICENSE-KEY-0001", token, challenge)
        if CORE_PRINTS[key] then assert.same(CORE_PRINTS[key], printed, key) end
        token:close()
        ran = ran + 1
      end
    end
    assert.is_true(ran >= 12, "ran " .. ran .. " fragments")
    for key in pairs(CORE_PRINTS) do assert.is_nil(CORE_NEEDS_CONTEXT[key]) end
  end)

  -- Every ```lua block of README.md and docs/*.md: run by a spec (by its
  -- section's heading), or a reference fragment of a page listed below, which
  -- must at least compile. A new page or block that nothing runs fails here.
  local RUN = {
    ["README.md"] = { ["Example"] = "this file" },
    ["docs/client.md"] = { ["Using the library"] = "this file",
                           ["Non-blocking calls"] = "spec/integration/client/async_spec.lua",
                           ["Discovery"] = "spec/integration/client/discovery_spec.lua" },
    ["docs/core.md"] = { ["Using the C core"] = "this file" },
    ["docs/items.md"] = { ["The Items flow"] = "this file",
                          ["Catalog files"] = "spec/unit/client/real_input_spec.lua" },
    ["docs/partner.md"] = { ["Partner integrations"] = "this file" },
    ["docs/errors.md"] = { ["Failing: `nil, err`"] = "spec/integration/client/error_shape_spec.lua",
                           ["Iterators that fail"] = "spec/integration/client/error_shape_spec.lua" },
  }
  local FRAGMENTS = {
    -- one function each, continuing the page's opening block: those that need no caller's context
    -- run in the test above; spec/integration/core/docs_spec.lua checks the names they document
    ["docs/core.md"] = true,
    ["docs/fleet.md"] = true,      -- needs Redis and an account: spec/integration/fleet/fleet_spec.lua
    ["docs/nonblocking.md"] = true, -- pieces of an event loop: examples/game_loop.lua, luv_loop.lua
  }

  it("runs every ```lua block of README.md and docs/*.md, or lists it as a fragment that compiles", function()
    local unrun, bad, seen = {}, {}, {}
    for _, file in ipairs(readme.files()) do
      for _, b in ipairs(readme.blocks(file)) do
        local where = ("%s:%d (%s)"):format(file, b.line, tostring(b.heading))
        if not (loadstring or load)(b.source, "=" .. where) then bad[#bad + 1] = where end
        local runner = RUN[file] and RUN[file][b.heading]
        if runner then seen[file .. "#" .. b.heading] = true
        elseif not FRAGMENTS[file] then unrun[#unrun + 1] = where end
      end
    end
    assert.same({}, bad)
    assert.same({}, unrun)
    for file, headings in pairs(RUN) do
      for heading, runner in pairs(headings) do
        assert.truthy(seen[file .. "#" .. heading], file .. " has no ```lua block under " .. heading)
        assert.equal(file, select(2, readme.block(heading)))
        if runner ~= "this file" then
          local f = assert(io.open(runner))
          assert.truthy(f:read("*a"):find('readme.block("' .. heading .. '")', 1, true), runner)
          f:close()
        end
      end
    end
  end)
end)
