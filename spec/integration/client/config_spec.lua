-- avalara.new: options, environments, AVALARA_* variables, errors before any request.
local avalara = require "avalara"
local emu = require "spec.support.emulator"
local H = require "spec.support.client"

local function new_err(opts)
  local ok, err = pcall(avalara.new, opts)
  assert.is_false(ok)
  return tostring(err)
end

local function run_lua(env, code)
  local lua = os.getenv("SPEC_LUA") or (arg and arg[-1]) or "lua5.4"
  local cmd = "env -u AVALARA_ACCOUNT_ID -u AVALARA_LICENSE_KEY -u AVALARA_COMPANY_ID -u AVALARA_ENVIRONMENT "
    .. "-u AVALARA_EMULATOR_URL " .. env .. " " .. lua .. " -e " .. "'" .. code:gsub("'", "'\\''") .. "' 2>&1"
  local p = io.popen(cmd)
  local out = p:read("*a")
  p:close()
  return out
end

describe("avalara.new", function()
  local e
  setup(function() e = emu.start() end)
  teardown(function() e:stop() end)
  before_each(function() e:reset() end)

  it("raises naming each missing required option, before any request", function()
    local base = { account_id = H.ACCOUNT, license_key = H.KEY, company_id = H.COMPANY,
      environment = "local", emulator_url = e.http_url }
    for _, name in ipairs { "account_id", "license_key" } do
      local o = {}
      for k, v in pairs(base) do if k ~= name then o[k] = v end end
      local msg = new_err(o)
      assert.truthy(msg:find("'" .. name .. "' is required", 1, true), msg)
    end
    assert.truthy(new_err { account_id = 1, license_key = "k", company_id = "x1", environment = "local",
      emulator_url = e.http_url }:find("'company_id' must be digits", 1, true))
    assert.truthy(new_err { account_id = 1, license_key = "k", company_id = 1, environment = "moon" }
      :find("'environment'", 1, true))
    -- (no emulator_url is the demo default, http://127.0.0.1:18080: local_defaults_spec)
    assert.truthy(new_err { account_id = 1, license_key = "k", company_id = 1, environment = "local",
      emulator_url = "ftp://x" }:find("emulator_url", 1, true))
    assert.truthy(new_err { account_id = 1, license_key = "k", company_id = 1, leeway = "x" }:find("'leeway'", 1, true))
    assert.truthy(new_err { account_id = 1, license_key = "k", company_id = 1, on_token = 3 }:find("'on_token'", 1, true))
    assert.truthy(new_err { account_id = 1, license_key = "k", company_id = 1, store = {} }:find("'store'", 1, true))
    assert.truthy(new_err { account_id = 1, license_key = "k", company_id = 1, retries = { max_attempts = "x" } }
      :find("retries.max_attempts", 1, true))
    assert.truthy(new_err { account_id = 1, license_key = "k", company_id = 1, timeout = "slow" }:find("'timeout'", 1, true))
    assert.truthy(new_err { account_id = 1, license_key = "k", company_id = 1, legacy = true, environment = "local",
      emulator_url = e.http_url }:find("'legacy'", 1, true))
    assert.equal(0, e:counters().requests)
  end)

  it("raises on an unknown option name, naming it and the nearest known one", function()
    local base = { account_id = H.ACCOUNT, license_key = H.KEY, environment = "local", emulator_url = e.http_url }
    base.comapny_id = 1001
    assert.matches("avalara.new: unknown option 'comapny_id' %(did you mean 'company_id'%?%)", new_err(base))
    base.comapny_id, base.frobnicate = nil, true
    assert.matches("avalara.new: unknown option 'frobnicate'$", new_err(base))
    assert.equal(0, e:counters().requests)
  end)

  it("keys the cached token by the credentials too (a digest of the key, never the key)", function()
    local store = avalara.store.memory()
    local c = H.client(e, { store = store })
    assert(c:token())
    for k in pairs(store.data) do assert.falsy(k:find(H.KEY, 1, true)) end
    local wrong = H.client(e, { store = store, license_key = "WRONG-KEY-999" })
    local tok, err = wrong:token()
    assert.is_nil(tok)
    assert.equal("invalid_client", err.code)
    assert.equal(2, H.grants(e))
  end)

  it("classify returns the model alone", function()
    e:configure { classification_delay = 0 }
    local c = H.client(e)
    local n = select("#", c:classify({ itemCode = "ONE", description = "green tea" }, { country = "US" }))
    assert.equal(1, n)
  end)

  it("warns once through on_warning when the token store cannot keep the token", function()
    local warnings = {}
    local store = avalara.store.memory()
    function store.set() return nil, "disk full" end
    local c = H.client(e, { store = store, on_warning = function(m) warnings[#warnings + 1] = m end })
    assert(c:token())
    assert(c:token())
    assert.same({ "cannot keep the token in avalara.store.memory: disk full (it is used for this process only)" },
      warnings)
    assert.equal(1, H.grants(e), "kept in the process: one token request")
  end)

  it("refuses plain http:// to a host that is not loopback, unless allow_http", function()
    local msg = new_err { account_id = 1, license_key = "k", environment = "local",
      emulator_url = "http://emulator.example:8080" }
    assert.truthy(msg:find("avalara.new: 'token_url' is plain http:// to a host that is not loopback", 1, true), msg)
    msg = new_err { account_id = 1, license_key = "k", api_base = "http://api.example" }
    assert.truthy(msg:find("'api_base' is plain http://", 1, true), msg)
    assert.truthy(new_err { account_id = 1, license_key = "k", allow_http = "yes" }:find("'allow_http'", 1, true))
    local c = avalara.new { account_id = 1, license_key = "k", environment = "local",
      emulator_url = "http://emulator.example:8080", allow_http = true }
    assert.equal("http://emulator.example:8080/connect/token", c.token_url)
    -- loopback needs no opt-in
    assert.truthy(avalara.new { account_id = 1, license_key = "k", environment = "local", emulator_url = e.http_url })
  end)

  it("needs company_id only for the classification calls, and says so before any request", function()
    local c = H.client(e, { company_id = false })
    assert.is_nil(c.company_id)
    for _, call in ipairs {
      function() return c:classify({ itemCode = "A", description = "shirt" }, { country = "US" }) end,
      function() return c:classification("x") end,
      function() return c:wait("x") end,
      function() return c:classify_batch({ { itemCode = "A", description = "shirt" } }, { country = "US" }) end,
    } do
      local ok, err = pcall(call)
      assert.is_false(ok)
      assert.truthy(tostring(err):find("'company_id' is required", 1, true), tostring(err))
    end
    assert.equal(0, e:counters().requests)
    assert.truthy(c:token())
    assert.truthy(c:sections())
  end)

  it("raises on a programming error in a call, before any request", function()
    local c = H.client(e)
    assert.has_error(function() c:classify("shirt") end)
    local ok, err = pcall(c.classify, c, { itemCode = "A", description = "shirt" })
    assert.is_false(ok)
    assert.truthy(tostring(err):find("country", 1, true))
    assert.has_error(function() c:classification({}) end)
    assert.has_error(function() c:hierarchy(nil, "6109") end)
    assert.has_error(function() c:classify_batch("x") end)
    assert.equal(0, e:counters().requests)
  end)

  it("knows the environments of design.md section 4", function()
    local function c(env, legacy)
      return avalara.new { account_id = 1, license_key = "k", company_id = 1, environment = env, legacy = legacy }
    end
    local p = c("production")
    assert.equal("https://identity.avalara.com/connect/token", p.token_url)
    assert.equal("https://hscode.api.avalara.com", p.api_base)
    assert.equal("hs-code-classification", p.scope)
    local s = c("sandbox")
    assert.equal("https://ai-sbx.avlr.sh/connect/token", s.token_url)
    assert.equal("https://hscode.api.sbx.avalara.com", s.api_base)
    local pl = c("production", true)
    assert.equal("https://identity.avalara.com/connect/token", pl.token_url)
    assert.equal("https://hscode.avatax.avalara.com", pl.api_base)
    assert.equal("avatax_api", pl.scope)
    local sl = c("sandbox", true)
    assert.equal("https://ai-sbx.avlr.sh/connect/token", sl.token_url)
    assert.equal("https://hscode.avatax.sbx.avalara.com", sl.api_base)
    assert.equal("avatax_api", sl.scope)
    local l = H.client(e)
    assert.equal(e.http_url .. "/connect/token", l.token_url)
    assert.equal(e.http_url, l.api_base)
    assert.equal("hs-code-classification", l.scope)
    local o = avalara.new { account_id = 1, license_key = "k", company_id = 1, token_url = "https://t.example/tok",
      api_base = "https://api.example/", scope = "avatax_api" }
    assert.equal("https://t.example/tok", o.token_url)
    assert.equal("https://api.example", o.api_base)
    assert.equal("avatax_api", o.scope)
  end)

  it("reads the AVALARA_* environment variables", function()
    local out = run_lua("AVALARA_ACCOUNT_ID=" .. H.ACCOUNT .. " AVALARA_LICENSE_KEY=" .. H.KEY
      .. " AVALARA_COMPANY_ID=1001 AVALARA_ENVIRONMENT=local AVALARA_EMULATOR_URL=" .. e.http_url,
      [[local c = require("avalara").new()
        local s = assert(c:sections())
        print(c.account_id, c.company_id, c.environment, c.api_base, #s)]])
    assert.equal(table.concat({ H.ACCOUNT, "1001", "local", e.http_url, "21" }, "\t") .. "\n", out)
    out = run_lua("AVALARA_ACCOUNT_ID=1 AVALARA_COMPANY_ID=1", [[print(pcall(require("avalara").new))]])
    assert.truthy(out:find("AVALARA_LICENSE_KEY", 1, true), out)
  end)

  it("keeps the license key out of tostring", function()
    local c = H.client(e)
    assert.falsy(tostring(c):find(H.KEY, 1, true))
    for _, v in pairs(c) do assert.are_not.equal(H.KEY, v) end
  end)
end)
