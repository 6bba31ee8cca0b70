-- docs/cli.md's table of exit statuses, walked: every command under every
-- outcome of the table (success, skipped rows, request failure, usage,
-- auth/config with an unknown connection, interrupted, terminated) exits
-- with the status the table gives that outcome (issue 23, item 5).
local H = require "spec.support.cli"
local common = require "avalara.cli.common"
local files = require "spec.support.files"

-- outcome -> status, from the table under "Exit status" in docs/cli.md
local function documented()
  local text = files.read("docs/cli.md")
  local section = assert(text:match("\nExit status, the same for every command.-\n\n(|.-)\n\n"))
  local codes = {}
  for status, outcome in section:gmatch("\n| (%d+) | ([^|]-) |") do codes[outcome] = tonumber(status) end
  return codes
end

describe("hscode exit statuses (docs/cli.md)", function()
  local w = H.world()
  local CODES = documented()

  it("the table gives every outcome and every status of avalara.cli.common.EXIT", function()
    assert.same({ success = 0, ["skipped rows"] = 0, ["request failure"] = 1, usage = 2, ["auth/config"] = 3,
      interrupted = 130, terminated = 143 }, CODES)
    local statuses = {}
    for _, code in pairs(CODES) do statuses[code] = true end
    for name, code in pairs(common.EXIT) do assert.is_true(statuses[code], "EXIT." .. name .. " is not documented") end
  end)

  local function env(extra)
    local e = { XDG_DATA_HOME = w.cache }
    for k, v in pairs(w.env) do e[k] = v end
    for k, v in pairs(extra or {}) do e[k] = v end
    return e
  end

  -- Each command with arguments that work against the emulator (nil: its
  -- success needs a browser, see spec/integration/partner/cli_spec.lua).
  local function commands()
    local csv = H.write(w.dir .. "/products.csv", "itemCode,description\nN-1,steel nail\n")
    return {
      classify = { "classify", "steel nail", "--country", "US", "--item-code", "G-1" },
      batch = { "batch", csv, "--country", "US", "--out", w.cache .. "/out.csv" },
      lookup = { "lookup", "0902", "--country", "US" },
      get = { "get", "1001-G-1-US" },
      items = { "items", "sla" },
      token = { "token" },
      connections = { "connections" },
      connect = false,
      disconnect = false,
      login = false, -- its success needs a browser: spec/integration/cli/login_spec.lua
      logout = { "logout" },
    }
  end
  -- the commands that send requests with the account's credentials (or a connection's)
  local NETWORK = { "classify", "batch", "lookup", "get", "items", "token" }

  local function expect(outcome, args, r)
    local what = outcome .. ": hscode " .. table.concat(args, " ")
    assert.equal(CODES[outcome], r.code, what .. "\n" .. r.stderr)
    assert.falsy(r.stderr:find("traceback", 1, true), what)
    assert.falsy(r.stderr:find("internal error", 1, true), what)
  end

  local function with(args, ...)
    local out = {}
    for _, a in ipairs(args) do out[#out + 1] = a end
    for _, a in ipairs { ... } do out[#out + 1] = a end
    return out
  end

  it("success, and skipped rows (batch --skip-invalid, every row sent classified)", function()
    local list = commands()
    for _, name in ipairs { "classify", "get", "batch", "lookup", "items", "token", "connections", "logout" } do
      expect("success", list[name], H.run(list[name], env(), w.cache))
    end
    local csv = H.write(w.dir .. "/skip.csv", "itemCode,description,country\nS-1,steel nail,US\nS-2,,US\nS-3,tea,UK\n")
    local args = { "batch", csv, "--skip-invalid", "--out", w.cache .. "/skip-out.csv" }
    local r = H.run(args, env(), w.cache)
    expect("skipped rows", args, r)
    assert.matches("1 classified.*2 invalid %(skipped%)", r.stderr)
    expect("usage", args, H.run({ "batch", csv, "--out", w.cache .. "/noskip.csv" }, env(), w.cache))
  end)

  it("request failure: the service unreachable, or nothing found", function()
    local list = commands()
    for _, name in ipairs(NETWORK) do
      local args = with(list[name], "--emulator-url", "http://127.0.0.1:1")
      expect("request failure", args, H.run(args, env(), w.cache))
    end
    expect("request failure", { "get", "1001-NOPE-US" }, H.run({ "get", "1001-NOPE-US" }, env(), w.cache))
    expect("request failure", { "lookup", "010199" }, H.run({ "lookup", "010199", "--country", "US" }, env(), w.cache))
  end)

  it("usage: an unknown option, for every command", function()
    for name in pairs(commands()) do
      local args = { name, "--no-such-option" }
      expect("usage", args, H.run(args, env(), w.cache))
    end
    assert.equal(0, w.e:counters().requests)
  end)

  it("auth/config: rejected or missing credentials, and an unknown connection from every command", function()
    local list = commands()
    local wrong = env { AVALARA_ACCOUNT_ID = "2000000001", AVALARA_LICENSE_KEY = "WRONG-LICENSE-KEY" }
    for _, name in ipairs(NETWORK) do
      expect("auth/config", list[name], H.run(list[name], wrong, w.cache))
      local args = with(list[name], "--connection", "c-none")
      local r = H.run(args, env(), w.cache)
      expect("auth/config", args, r)
      assert.matches("no connection 'c%-none'", r.stderr)
    end
    local r = H.run({ "disconnect", "c-none" }, env(), w.cache)
    expect("auth/config", { "disconnect", "c-none" }, r)
    assert.matches("no connection 'c%-none'", r.stderr)
    -- the partner commands without the partner's secret
    for _, args in ipairs { { "connect" }, { "connections" }, { "disconnect", "c-none" } } do
      expect("auth/config", args, H.run(args, env { AVALARA_CLIENT_ID = "someone" }, w.cache))
    end
  end)

  for signal, outcome in pairs { INT = "interrupted", TERM = "terminated" } do
    it(outcome .. ": every command that waits for the service", function()
      local list = commands()
      w.e:configure { latency_ms = 30000 } -- each waits for its first reply
      local jobs = {}
      for _, name in ipairs(NETWORK) do jobs[name] = H.spawn(list[name], env(), w.cache) end
      require("socket").sleep(2.5) -- all started and waiting, even on a loaded machine
      for _, job in pairs(jobs) do H.signal(job, signal) end
      local ok, err = pcall(function()
        for name, job in pairs(jobs) do expect(outcome, list[name], H.finish(job, 30)) end
      end)
      w.e:configure { latency_ms = 0 }
      assert(ok, err)
    end)
  end
end)
