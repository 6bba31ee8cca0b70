-- A catalog classified for several countries through the Items flow, end
-- to end (issue 13's "Done when"): 50 items for 3 countries end with 150
-- item classifications, seen through the client, the CLI and one received
-- webhook per item; a run killed (kill -9, Ctrl-C) or stopped by the sandbox
-- quota is resumed by running it again, without creating or paying twice.
local H = require "spec.support.items"
local CLI = require "spec.support.cli"
local webhook = require "avalara.webhook"
local socket = require "socket"

local CATALOG = "examples/catalog.csv"
local COUNTRIES = { "US", "DE", "JP" }

local function csv_rows(text)
  local records = assert(require("avalara.cli").csv_parse(text))
  local header, rows = records[1], {}
  for r = 2, #records do
    local row = {}
    for c, name in ipairs(header) do row[name] = records[r][c] end
    rows[#rows + 1] = row
  end
  return rows
end

local function codes_of(path)
  local out = {}
  for _, it in ipairs(assert(require("avalara.catalog").read(path))) do out[#out + 1] = it.itemCode end
  return out
end

describe("a catalog through the Items flow", function()
  local e, cache, dir, receiver

  setup(function()
    e = H.emu.start()
    dir = CLI.tmpdir()
  end)
  teardown(function()
    e:stop()
    CLI.rmdir(dir)
  end)
  before_each(function()
    e:reset()
    e:configure { classification_delay = 0.2 }
    cache = CLI.tmpdir()
  end)
  after_each(function()
    CLI.rmdir(cache)
    if receiver then receiver.stop(); receiver = nil end
  end)

  local function env(extra)
    local t = { AVALARA_ENVIRONMENT = "local", AVALARA_EMULATOR_URL = e.http_url }
    for k, v in pairs(extra or {}) do t[k] = v end
    return t
  end

  local function hscode(args, extra)
    return CLI.run(args, env(extra), cache)
  end

  -- Starts `hscode args` in the background (its own process group, so it
  -- takes SIGINT); returns its pid and a function giving its exit status
  -- once it ended (nil before).
  local function start(args, extra)
    local words = {}
    for i, a in ipairs(args) do words[i] = H.emu.shell_quote(a) end
    local vars = { "LUA_PATH=" .. H.emu.shell_quote(CLI.ROOT .. "/lua/?.lua;" .. CLI.ROOT .. "/lua/?/init.lua;;"),
      "LUA_CPATH=" .. H.emu.shell_quote(os.getenv("LUA_CPATH") or CLI.ROOT .. "/build/lua5.4/?.so;;"),
      "XDG_CACHE_HOME=" .. H.emu.shell_quote(cache) }
    for k, v in pairs(env(extra)) do vars[#vars + 1] = k .. "=" .. H.emu.shell_quote(v) end
    local rc, pidfile, log = dir .. "/rc", dir .. "/pid", dir .. "/stderr"
    os.remove(rc)
    os.remove(pidfile)
    local inner = "set -m; env " .. table.concat(vars, " ") .. " " .. (os.getenv("SPEC_LUA") or "lua5.4")
      .. " bin/hscode " .. table.concat(words, " ") .. " >/dev/null 2>" .. log .. " </dev/null & echo $! >"
      .. pidfile .. "; wait $!; echo $? >" .. rc
    os.execute("cd " .. H.emu.shell_quote(CLI.ROOT) .. " && unset LD_PRELOAD; setsid sh -c "
      .. H.emu.shell_quote(inner) .. " >/dev/null 2>&1 &")
    local pid = H.eventually(function()
      local f = io.open(pidfile)
      local n = f and tonumber(f:read("*l"))
      if f then f:close() end
      return n
    end)
    return assert(pid), function()
      local f = io.open(rc)
      if not f then return nil end
      local s = tonumber(f:read("*l"))
      f:close()
      return s, CLI.slurp(log)
    end
  end

  it("classifies 50 items for 3 countries: 150 classifications, seen by the client, the CLI and the webhooks", function()
    local client = H.client(e)
    receiver = H.receiver()
    local reg = assert(client:create_webhook_registration { connectorName = "catalog-spec", url = receiver.url })
    local out = dir .. "/codes.csv"
    local r = hscode { "items", "classify", CATALOG, "--countries", "US,DE,JP", "--out", out }
    assert.equal(0, r.code, r.stderr)
    assert.truthy(r.stderr:find("50 items x 3 countries: 150 classified, 0 could not be classified, 0 pending, "
      .. "0 failed, 0 not attempted (150 initiated, 0 kept from before", 1, true), r.stderr)
    local rows = csv_rows(CLI.slurp(out))
    assert.equal(150, #rows)
    local from_cli = {}
    for _, row in ipairs(rows) do
      assert.equal("Classified", row.status)
      assert.truthy(row.hsCode:match("^%d%d%d%d%d%d$"), row.itemCode)
      from_cli[row.itemCode .. " " .. row.country] = row.hsCode
    end
    assert.equal(1, H.route(e, "items_initiate"))

    -- the client: 150 item classifications, the same codes
    local items = assert(client:items { include = "Classifications" })
    assert.equal(50, #items)
    local total = 0
    for _, it in ipairs(items) do
      local ks = assert(client:item_classifications(it.id))
      assert.equal(3, #ks)
      for _, k in ipairs(ks) do
        total = total + 1
        assert.equal(from_cli[it.itemCode .. " " .. k.country], k.productCode)
      end
    end
    assert.equal(150, total)

    -- the CLI, reading the catalog back
    local listed = hscode { "items", "list", "--countries", "US,DE,JP", "--format", "csv" }
    assert.equal(0, listed.code, listed.stderr)
    local back = csv_rows(listed.stdout)
    assert.equal(150, #back)
    for _, row in ipairs(back) do assert.equal(from_cli[row.itemCode .. " " .. row.country], row.hsCode) end

    -- one webhook per item, each with its 3 codes, signed
    local deliveries = H.eventually(function()
      local d = receiver.deliveries()
      return #d >= 50 and d
    end, 20)
    assert.truthy(deliveries, "50 deliveries")
    socket.sleep(0.3)
    assert.equal(50, #receiver.deliveries())
    local secret = client:webhook_secret(reg.registrationId)
    local per_item, assigned = {}, 0
    for _, d in ipairs(deliveries) do
      local event = assert(webhook.parse(d.body, d.headers, { secret = secret }))
      assert.is_nil(per_item[event.itemCode])
      per_item[event.itemCode] = true
      assert.equal(3, #event.classifications)
      for _, k in ipairs(event.classifications) do
        assigned = assigned + 1
        assert.equal(from_cli[event.itemCode .. " " .. k.country], k.productCode)
      end
    end
    assert.equal(150, assigned)
    for _, code in ipairs(codes_of(CATALOG)) do assert.truthy(per_item[code], code) end

    -- again: nothing created, nothing initiated, the same rows
    local again = hscode { "items", "classify", CATALOG, "--countries", "US,DE,JP", "--format", "json" }
    assert.equal(0, again.code, again.stderr)
    assert.equal(150, #require("cjson").decode(again.stdout))
    assert.truthy(again.stderr:find("(0 initiated, 150 kept from before", 1, true), again.stderr)
    assert.equal(1, H.route(e, "items_initiate"))
    assert.equal(1, H.route(e, "items_create"))
  end)

  it("client:classify_catalog: rows and summary; a changed item is updated and classified again", function()
    local client = H.client(e)
    local list = assert(require("avalara.catalog").read(CATALOG))
    local rows, s = client:classify_catalog(list, COUNTRIES, { chunk = 20, interval = 0.05 })
    assert.truthy(rows, s)
    assert.same({ 50, 3, 150, 150, 0, 0, 50, 0, 150, 0 }, { s.items, s.countries, s.rows, s.classified, s.failed,
      s.not_attempted, s.created, s.updated, s.initiated, s.kept })
    assert.equal(3, H.route(e, "items_initiate"))
    assert.equal("TS-001", rows[1].itemCode)
    assert.equal("US", rows[1].country)
    assert.equal("610910", rows[1].hsCode)
    assert.equal("HTS", rows[1].systemCode)
    list[2].description, list[2].summary = "porcelain coffee mug", nil
    rows, s = client:classify_catalog(list, { "US", "DE", "JP", "FR" }, { interval = 0.05 })
    assert.same({ 1, 53, 147 }, { s.updated, s.initiated, s.kept })
    assert.equal("691110", rows[5].hsCode) -- SW-002 for US, now a mug
    assert.equal(200, s.classified)
    assert.has_error(function() client:classify_catalog({ { itemCode = "A", description = "a" },
      { itemCode = "A", description = "b" } }, "US") end,
      "client:classify_catalog: items[2]: item code 'A' is already at items[1]")
    assert.has_error(function() client:classify_catalog(list, { "USA" }) end)
  end)

  it("resumes after kill -9 without creating or paying twice", function()
    e:configure { classification_delay = 3, quotas = { ["2000000002"] = 150 } }
    local sandbox = { AVALARA_ACCOUNT_ID = "2000000002", AVALARA_LICENSE_KEY = CLI.SBX_KEY, AVALARA_COMPANY_ID = "1002" }
    local pid, finished = start({ "items", "classify", CATALOG, "--countries", "US,DE,JP" }, sandbox)
    assert.truthy(H.eventually(function() return H.route(e, "items_initiate") >= 1 end, 20), "initiated")
    os.execute("kill -KILL " .. pid)
    assert.truthy(H.eventually(function() return finished() end), "killed")
    assert.equal(150, e:counters().quota_used["2000000002"])
    e:configure { classification_delay = 0.2 }
    local r = hscode({ "items", "classify", CATALOG, "--countries", "US,DE,JP", "--format", "csv" }, sandbox)
    assert.equal(0, r.code, r.stderr)
    assert.equal(150, #csv_rows(r.stdout))
    assert.truthy(r.stderr:find("150 classified", 1, true), r.stderr)
    assert.truthy(r.stderr:find("(0 initiated, 150 kept from before", 1, true), r.stderr)
    assert.equal(1, H.route(e, "items_initiate"))
    assert.equal(1, H.route(e, "items_create"))
    assert.equal(150, e:counters().quota_used["2000000002"])
  end)

  it("stops at the sandbox quota, says so, and goes on once there is quota again", function()
    e:configure { quotas = { ["2000000002"] = 100 } }
    local sandbox = { AVALARA_ACCOUNT_ID = "2000000002", AVALARA_LICENSE_KEY = CLI.SBX_KEY, AVALARA_COMPANY_ID = "1002" }
    local r = hscode({ "items", "classify", CATALOG, "--countries", "US,DE,JP", "--chunk", "10", "--format", "csv" },
      sandbox)
    assert.equal(1, r.code)
    local rows = csv_rows(r.stdout)
    local counts = {}
    for _, row in ipairs(rows) do counts[row.status] = (counts[row.status] or 0) + 1 end
    assert.same({ Classified = 90, NOT_ATTEMPTED = 60 }, counts)
    assert.truthy(r.stderr:find("60 not attempted", 1, true), r.stderr)
    assert.truthy(r.stderr:find("stopped: .*RequestLimitExceeded"), r.stderr)
    assert.equal(90, e:counters().quota_used["2000000002"])
    e:configure { quotas = { ["2000000002"] = 150 } }
    r = hscode({ "items", "classify", CATALOG, "--countries", "US,DE,JP", "--chunk", "10" }, sandbox)
    assert.equal(0, r.code, r.stderr)
    assert.truthy(r.stderr:find("(60 initiated, 90 kept from before", 1, true), r.stderr)
    assert.equal(150, e:counters().quota_used["2000000002"])
  end)

  it("Ctrl-C: exits 130 saying how to go on; the next run finishes", function()
    e:configure { classification_delay = 3 }
    local pid, finished = start { "items", "classify", CATALOG, "--countries", "US,DE,JP" }
    assert.truthy(H.eventually(function() return H.route(e, "items_initiate") >= 1 end, 20), "initiated")
    socket.sleep(0.3)
    os.execute("kill -INT " .. pid)
    assert.truthy(H.eventually(function() return finished() end, 10), "ended")
    local code, stderr = finished()
    assert.equal(130, code, stderr)
    assert.truthy(stderr:find("hscode: interrupted: what was done is kept by the service", 1, true), stderr)
    assert.is_nil(stderr:find("traceback", 1, true))
    -- a graceful stop: no request after the signal, and the rows known so far summed up
    assert.truthy(stderr:find("hscode: stopping: no new request", 1, true), stderr)
    assert.truthy(stderr:find("hscode: 50 items x 3 countries: ", 1, true), stderr)
    assert.truthy(stderr:match("(%d+) pending") ~= "0", stderr)
    e:configure { classification_delay = 0.2 }
    local r = hscode { "items", "classify", CATALOG, "--countries", "US,DE,JP" }
    assert.equal(0, r.code, r.stderr)
    assert.equal(1, H.route(e, "items_initiate"))
  end)

  it("checks the catalog and the options before any request", function()
    local bad = CLI.write(dir .. "/bad.csv", "itemCode,summary\nA,x\n")
    local r = hscode { "items", "classify", bad, "--countries", "US" }
    assert.equal(2, r.code)
    assert.truthy(r.stderr:find("no 'description' column", 1, true), r.stderr)
    local long = CLI.write(dir .. "/long.csv", "itemCode,description\n" .. ("x"):rep(51) .. ",d\n")
    r = hscode { "items", "classify", long, "--countries", "US" }
    assert.equal(2, r.code)
    assert.truthy(r.stderr:find("line 2: 'itemCode' is longer than 50 characters", 1, true), r.stderr)
    r = hscode { "items", "classify", CATALOG, "--countries", "US,Germany" }
    assert.equal(2, r.code)
    r = hscode { "items", "classify", CATALOG }
    assert.equal(2, r.code)
    assert.truthy(r.stderr:find("--countries is required", 1, true))
    r = hscode { "items", "frobnicate" }
    assert.equal(2, r.code)
    assert.equal(0, e:counters().requests)
  end)

  it("lists every problem of the catalog with its file line, the first 50; --errors FILE has them all", function()
    local text = { "itemCode,description", 'A,"cotton', 't-shirt"', ("x"):rep(51) .. ",d", "A,wool sweater" }
    for i = 1, 60 do text[#text + 1] = "E" .. i .. "," end -- lines 6 to 65: no description
    local input = CLI.write(dir .. "/many.csv", table.concat(text, "\n") .. "\n")
    local r = hscode { "items", "classify", input, "--countries", "US" }
    assert.equal(2, r.code)
    assert.matches("62 items of .*many%.csv are not valid %(nothing was sent%)", r.stderr)
    assert.matches("many%.csv line 4: 'itemCode' is longer than 50 characters", r.stderr)
    assert.matches("many%.csv line 5: item code A is also on line 2", r.stderr)
    assert.matches("many%.csv line 53: ", r.stderr)
    assert.falsy(r.stderr:find("line 54:", 1, true))
    assert.matches("%.%.%. and 12 more: %-%-errors FILE writes all 62", r.stderr)
    local errors = dir .. "/errors.csv"
    r = hscode { "items", "classify", input, "--countries", "US", "--errors", errors }
    assert.equal(2, r.code)
    assert.matches("all 62 are in " .. errors:gsub("%p", "%%%0"), r.stderr)
    local rows = csv_rows(CLI.slurp(errors))
    assert.equal(62, #rows)
    assert.same({ "4", "itemCode" }, { rows[1].line, rows[1].column })
    assert.same({ "5", "itemCode", "item code A is also on line 2 (one item per item code)" },
      { rows[2].line, rows[2].column, rows[2].problem })
    assert.same({ "65", "description" }, { rows[62].line, rows[62].column })
    assert.equal(0, e:counters().requests)
  end)

  it("shows the SLA and verifies codes, all or nothing", function()
    local r = hscode { "items", "sla" }
    assert.equal(0, r.code, r.stderr)
    assert.equal("HS code classification SLA: 24 hours\n", r.stdout)
    assert.equal(24, require("cjson").decode(hscode({ "items", "sla", "--json" }).stdout).slaInHours)
    assert(H.client(e):create_items { { itemCode = "TS-1", description = "t-shirt" },
      { itemCode = "MUG/2", description = "mug" } })
    r = hscode { "items", "verify", "TS-1:US:610910", "MUG/2:DE:12" }
    assert.equal(1, r.code)
    assert.truthy(r.stdout:find("nothing kept", 1, true), r.stdout)
    assert.truthy(r.stdout:find("MUG/2:DE:12: InvalidHsCode", 1, true), r.stdout)
    local file = CLI.write(dir .. "/codes.csv", "itemCode,country,hsCode\nTS-1,US,6109.10\nMUG/2,DE,691200\n")
    r = hscode { "items", "verify", file }
    assert.equal(0, r.code, r.stderr)
    assert.equal("2 codes verified and kept\n", r.stdout)
    local listed = hscode { "items", "list", "--json" }
    local rows = require("cjson").decode(listed.stdout)
    assert.equal(2, #rows)
    r = hscode { "items", "verify", "NOPE:US:610910" }
    assert.equal(1, r.code)
    assert.truthy(r.stderr:find("no item 'NOPE'", 1, true))
  end)
end)
