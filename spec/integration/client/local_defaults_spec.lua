-- Issue 23, item 11: `environment = "local"` means the same in the library
-- and in `hscode --env local` (the emulator's demo account, company and URL,
-- `avalara.environments["local"].demo`), and HS codes with dots work in
-- every call that takes a code, as in the CLI.
local avalara = require "avalara"
local emu = require "spec.support.emulator"
local common = require "avalara.cli.common"
local H = require "spec.support.client"

local function sh(cmd)
  local p = assert(io.popen(cmd .. " 2>&1"))
  local out = p:read("*a")
  p:close()
  return out
end

describe("environment 'local' with no credentials", function()
  it("uses the emulator's demo account, company and URL: the same values as the CLI's", function()
    local c = avalara.new { environment = "local" }
    local demo = avalara.environments["local"].demo
    assert.equal("2000000001", c.account_id)
    assert.equal(1001, c.company_id)
    assert.equal("http://127.0.0.1:18080", c.emulator_url)
    assert.equal("http://127.0.0.1:18080/connect/token", c.token_url)
    assert.same({ account = demo.account_id, license_key = demo.license_key, company = demo.company_id },
      common.DEMO)
    assert.equal(demo.emulator_url, common.DEFAULT_EMULATOR_URL)
  end)

  -- the interpreter of this run (SPEC_LUA: with a sanitizer's preload under ASan)
  local LUA = os.getenv("SPEC_LUA") or emu.shell_quote(arg[-1] or "lua")

  it("works from the environment alone, as in the OpenResty snippet (AVALARA_ENVIRONMENT=local)", function()
    local out = sh("env -u AVALARA_ACCOUNT_ID -u AVALARA_LICENSE_KEY -u AVALARA_COMPANY_ID "
      .. "AVALARA_ENVIRONMENT=local AVALARA_EMULATOR_URL=http://127.0.0.1:1 " .. LUA
      .. " -e 'local c = require(\"avalara\").new{}; print(c.account_id, c.company_id, c.api_base)'")
    assert.equal("2000000001\t1001\thttp://127.0.0.1:1\n", out)
  end)

  it("keeps what is given: a company, a URL, an account (then the key is needed)", function()
    local c = avalara.new { environment = "local", company_id = 1002, emulator_url = "http://127.0.0.1:9" }
    assert.equal(1002, c.company_id)
    assert.equal("http://127.0.0.1:9", c.api_base)
    assert.has_error(function() avalara.new { environment = "local", account_id = "2000000002" } end,
      "avalara.new: 'license_key' is required (or set AVALARA_LICENSE_KEY)")
    -- other environments have no demo account
    assert.has_error(function() avalara.new { environment = "sandbox" } end,
      "avalara.new: 'account_id' is required (or set AVALARA_ACCOUNT_ID)")
  end)
end)

describe("HS codes with dots", function()
  local e
  setup(function() e = emu.start() end)
  teardown(function() e:stop() end)

  it("classify against the emulator with the demo account (only emulator_url given)", function()
    local c = avalara.new { environment = "local", emulator_url = e.http_url, retries = H.FAST, timeout = 5 }
    local model, err = c:classify({ itemCode = "TS-1", description = "men's cotton t-shirt" }, { country = "US" })
    assert.truthy(model, tostring(err))
    assert.equal("1001-TS-1-US", model.id)
  end)

  it("hierarchy, hs_codes and each_hs_code take 6109.10 as 610910", function()
    local c = H.client(e)
    local chain = assert(c:hierarchy("US", "6109.10"))
    assert.equal("610910", chain[#chain].hsCode)
    local kids = assert(c:hs_codes("US", "61.09"))
    assert.same({ "610910", "610990" }, { kids[1].hsCode, kids[2].hsCode })
    local next_code = c:each_hs_code("US", "61.09")
    assert.equal("610910", next_code().hsCode)
    assert.has_error(function() c:hierarchy("US", "..") end,
      "client:hierarchy: 'code' must be a section numeral or an HS code string (got string)")
  end)
end)
