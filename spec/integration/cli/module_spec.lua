-- avalara.cli run in-process with an injected sys (terminal, environment, exit).
local avalara = require "avalara"
local cli = require "avalara.cli"
local emu = require "spec.support.emulator"

-- A stand-in for a file handle that keeps what is written.
local function buffer()
  local b = { text = "" }
  function b:write(...)
    self.text = self.text .. table.concat({ ... })
    return self
  end
  function b.flush() end
  return b
end

describe("avalara.cli in-process", function()
  local e, sys, exited, vars

  setup(function() e = emu.start() end)
  teardown(function() e:stop() end)
  before_each(function()
    e:reset()
    e:configure { classification_delay = 0 }
    exited = nil
    vars = { AVALARA_ENVIRONMENT = "local", AVALARA_EMULATOR_URL = e.http_url }
    sys = {
      stdout = buffer(), stderr = buffer(), isatty = function() return true end,
      getenv = function(name) return vars[name] end,
      exit = function(code) exited = code end,
      store = function() return avalara.store.memory() end,
    }
  end)

  it("draws a progress bar on a terminal and exits through sys.exit", function()
    cli.main({ "batch", "examples/products.csv", "--concurrency", "4" }, sys)
    assert.equal(0, exited)
    assert.equal("\r[" .. ("."):rep(30) .. "] 0/20  0 failed  0/s  0s\27[K", sys.stderr.text:sub(1, 60))
    -- redrawn as items finish, with the rate, the time so far and an ETA
    assert.matches("\r%[#+%.*%] %d+/20  0 failed  %d+/s  %ds  ETA %d+s\27%[K", sys.stderr.text)
    assert.matches("\r%[" .. ("#"):rep(30) .. "%] 20/20  0 failed  %d+/s  %ds\27%[K\n", sys.stderr.text)
    assert.falsy(sys.stderr.text:find("done,", 1, true), "no plain progress lines on a terminal")
    assert.matches("^ITEM +CC +HS CODE +STATUS +DESCRIPTION\nTS%-001 +US +610910 +CLASSIFIED", sys.stdout.text)
  end)

  it("fits the table to COLUMNS", function()
    vars.COLUMNS = "60"
    assert.equal(0, cli.run({ "batch", "examples/products.csv" }, sys))
    for line in sys.stdout.text:gmatch("[^\n]+") do assert.is_true(#line <= 60, line) end
    assert.matches("%.%.%.\n", sys.stdout.text)
  end)

  it("reads credentials from sys.getenv only, and reports usage errors on sys.stderr", function()
    vars = { AVALARA_ENVIRONMENT = "sandbox" }
    assert.equal(3, cli.run({ "token" }, sys))
    assert.equal("hscode: no account ID: set AVALARA_ACCOUNT_ID (or use --account)\n", sys.stderr.text)
    sys.stderr = buffer()
    assert.equal(2, cli.run({ "classify", "tea" }, sys))
    assert.equal("hscode: --country is required (two letters, such as US)\nTry 'hscode classify --help'.\n",
      sys.stderr.text)
    assert.equal("", sys.stdout.text)
  end)

  it("keeps one libuv instance when modules are unloaded and loaded again (as busted's insulate does)", function()
    -- Two luv instances share libuv's default loop; collecting the first
    -- closes it under the second, and the next uv.run crashed (SIGSEGV).
    local script = os.tmpname()
    local f = assert(io.open(script, "w"))
    f:write([[
      for round = 1, 3 do
        local saved = {}
        for k, v in pairs(package.loaded) do saved[k] = v end
        local signals = require "avalara.cli.signals"
        local sig = signals.catch()
        assert(sig.check() == nil)
        sig.close()
        for k in pairs(package.loaded) do if not saved[k] then package.loaded[k] = nil end end
        signals, sig = nil, nil
        collectgarbage("collect"); collectgarbage("collect")
      end
      print("ok")
    ]])
    f:close()
    local lua = os.getenv("SPEC_LUA") or "lua5.4"
    local p = io.popen(lua .. " " .. script .. " 2>&1; echo \"exit $?\"")
    local out = p:read("*a")
    p:close()
    os.remove(script)
    assert.equal("ok\nexit 0\n", out)
  end)

  it("logs each exchange with --verbose, without secrets", function()
    assert.equal(0, cli.run({ "lookup", "0902", "--country", "US", "-v" }, sys))
    assert.matches("hscode: POST " .. e.http_url:gsub("%p", "%%%0") .. "/connect/token %-> 200", sys.stderr.text)
    assert.matches("hscode: GET .*/api/v2/definitions/crossborder/US/0902/hierarchy %-> 200", sys.stderr.text)
    assert.falsy(sys.stderr.text:find("DEMO-LICENSE-KEY-0001", 1, true))
  end)
end)
