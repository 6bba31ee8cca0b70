-- bin/hscode run as a subprocess against the emulator.
local cjson = require "cjson"
local cli = require "avalara.cli"
local cli_classify = require "avalara.cli.classify"
local H = require "spec.support.cli"

describe("the hscode command", function()
  local e, cache, dir, env

  local function hscode(...)
    return H.run({ ... }, env, cache)
  end

  local read_csv = H.read_csv

  local w = H.world()
  before_each(function() e, cache, dir, env = w.e, w.cache, w.dir, w.env end)

  describe("classify", function()
    it("prints the code, its description and the status #smoke", function()
      local r = hscode("classify", "men's cotton t-shirt", "--country", "us")
      assert.equal(0, r.code)
      assert.matches("hs code +610910\n", r.stdout)
      assert.matches("description +T%-shirts, singlets and other vests; of cotton", r.stdout)
      assert.matches("status +CLASSIFIED\n", r.stdout)
      assert.matches("country +US\n", r.stdout)
      assert.equal("", r.stderr)
    end)

    it("prints the model with --json, and a resolution when it cannot be classified", function()
      local r = hscode("classify", "xyzzy", "--country", "US", "--item-code", "X-1", "--json")
      assert.equal(0, r.code)
      local model = cjson.decode(r.stdout)
      assert.equal("CANNOT_BE_CLASSIFIED", model.status)
      assert.equal("X-1", model.item.itemCode)
      assert.equal("Not enough details.", model.resolution)
    end)

    it("takes credentials from the environment (sandbox account) and from options", function()
      env.AVALARA_ACCOUNT_ID, env.AVALARA_LICENSE_KEY, env.AVALARA_COMPANY_ID = "2000000002", H.SBX_KEY, "1002"
      local r = hscode("classify", "leather handbag", "--country", "US", "--json")
      assert.equal(0, r.code, r.stderr)
      local model = cjson.decode(r.stdout)
      assert.equal(1002, model.item.companyId)
      assert.equal("1002-" .. cli_classify.default_item_code("leather handbag") .. "-US", model.id)
      env.AVALARA_ACCOUNT_ID, env.AVALARA_LICENSE_KEY, env.AVALARA_COMPANY_ID = nil, nil, nil
      r = hscode("classify", "bicycle", "--country", "US", "--json", "--account", "2000000002",
        "--license-key", H.SBX_KEY, "--company", "1002")
      assert.equal(0, r.code, r.stderr)
      assert.equal("871200", cjson.decode(r.stdout).hsCode)
      -- two products, two item codes: two classifications, each counted against the quota
      assert.equal("1002-" .. cli_classify.default_item_code("bicycle") .. "-US", cjson.decode(r.stdout).id)
      assert.same({ ["2000000002"] = 2 }, e:counters().quota_used)
    end)
  end)

  describe("batch", function()
    -- Quoted commas, quotes and a line break, a BOM, CRLF, case-insensitive
    -- columns in another order, a country column with one row left to --country.
    local INPUT = "\239\187\191Description,ITEM_CODE,Country\r\n"
      .. "\"men's cotton t-shirt, crew neck\",TS-1,us\r\n"
      .. "\"leather handbag \"\"city\"\"\",BAG-2,\r\n"
      .. "\"fresh apples\nfrom the orchard\",AP-3,GB\r\n"

    it("writes every item's result to a CSV file and sums up on stderr", function()
      local input, out = H.write(dir .. "/in.csv", INPUT), dir .. "/out.csv"
      local r = hscode("batch", input, "--country", "DE", "--out", out, "--concurrency", "2")
      assert.equal(0, r.code, r.stderr)
      assert.equal("", r.stdout)
      local rows, header = read_csv(out)
      -- the input's columns as they were named, then the result columns
      assert.same({ "Description", "ITEM_CODE", "Country", "status", "hsCode", "hsCodeDescription", "resolution",
        "id", "errorKind", "errorStatus", "errorCode", "errorMessage", "requestId" }, header)
      assert.equal(3, #rows)
      assert.same({ "TS-1", "men's cotton t-shirt, crew neck", "US", "CLASSIFIED", "610910", "1001-TS-1-US" },
        { rows[1].ITEM_CODE, rows[1].Description, rows[1].Country, rows[1].status, rows[1].hsCode, rows[1].id })
      assert.same({ "BAG-2", 'leather handbag "city"', "DE", "420221" },
        { rows[2].ITEM_CODE, rows[2].Description, rows[2].Country, rows[2].hsCode })
      assert.same({ "AP-3", "fresh apples\nfrom the orchard", "GB", "080810" },
        { rows[3].ITEM_CODE, rows[3].Description, rows[3].Country, rows[3].hsCode })
      -- descriptions come from the definitions (the models have none): one hierarchy per country and code
      assert.equal("T-shirts, singlets and other vests; of cotton, knitted or crocheted", rows[1].hsCodeDescription)
      assert.equal("Fruit, edible; apples, fresh", rows[3].hsCodeDescription)
      assert.equal(3, H.route(e, "definitions_hierarchy"))
      assert.matches("hscode: 3/3 done, 0 failed %(", r.stderr)
      assert.matches("hscode: 3 items: 3 classified, 0 could not be classified, 0 failed %(%d+%.%d s%); "
        .. "results in .*out%.csv\n$", r.stderr)
      assert.equal(3, H.route(e, "classification_create"))
      assert.falsy(H.listing(dir):find("partial", 1, true), "no temporary file left beside it")
    end)

    it("writes JSON by extension and keeps the finished items when others fail (exit 1)", function()
      local input, out = H.write(dir .. "/in2.csv", INPUT), dir .. "/out.json"
      -- Two creates answered with a 400 whose body is not JSON: not retried.
      e:fault("classification_create", "invalid_json", 2, { status = 400 })
      local r = hscode("batch", input, "--country", "DE", "-o", out, "--concurrency", "1")
      assert.equal(1, r.code, r.stderr)
      local rows = cjson.decode(H.slurp(out))
      assert.equal(3, #rows)
      assert.same({ "FAILED", "FAILED", "CLASSIFIED" }, { rows[1].status, rows[2].status, rows[3].status })
      assert.equal("080810", rows[3].hsCode)
      for i = 1, 2 do
        assert.equal(400, rows[i].error.status)
        assert.is_string(rows[i].error.kind)
        assert.is_string(rows[i].error.message)
        assert.is_nil(rows[i].hsCode)
      end
      assert.matches("3 items: 1 classified, 0 could not be classified, 2 failed", r.stderr)
    end)

    it("keeps the classified items when the sandbox quota runs out mid-batch", function()
      e:configure { quotas = { ["2000000002"] = 2 } }
      env.AVALARA_ACCOUNT_ID, env.AVALARA_LICENSE_KEY, env.AVALARA_COMPANY_ID = "2000000002", H.SBX_KEY, "1002"
      local input, out = H.write(dir .. "/in3.csv", INPUT), dir .. "/quota.csv"
      local r = hscode("batch", input, "--country", "DE", "--out", out, "--concurrency", "1")
      assert.equal(1, r.code, r.stderr)
      local rows = read_csv(out)
      assert.same({ "CLASSIFIED", "CLASSIFIED", "NOT_ATTEMPTED" }, { rows[1].status, rows[2].status, rows[3].status })
      assert.same({ "quota", "429", "RequestLimitExceeded" }, { rows[3].errorKind, rows[3].errorStatus,
        rows[3].errorCode })
      assert.equal("", rows[3].hsCode)
      assert.matches("stopped: the classification quota is used up", r.stderr)
    end)

    it("prints a table on stdout without --out, and reads a JSON array of items", function()
      local input = H.write(dir .. "/in.json", cjson.encode {
        { item_code = "TS-1", description = "men's cotton t-shirt" },
        { itemCode = "Z-2", description = "xyzzy", country = "CA" } })
      local r = hscode("batch", input, "--country", "US")
      assert.equal(0, r.code, r.stderr)
      local lines = {}
      for line in r.stdout:gmatch("[^\n]+") do lines[#lines + 1] = line end
      assert.equal(3, #lines)
      assert.matches("^ITEM +CC +HS CODE +STATUS +DESCRIPTION$", lines[1])
      assert.matches("^TS%-1 +US +610910 +CLASSIFIED +T%-shirts", lines[2])
      assert.matches("^Z%-2 +CA +%- +CANNOT_BE_CLASSIFIED +Not enough details%.$", lines[3])
      assert.matches("2 items: 1 classified, 1 could not be classified, 0 failed", r.stderr)
    end)

    it("classifies examples/products.csv (the demo) with the demo account", function()
      local r = hscode("batch", "examples/products.csv", "--format", "csv")
      assert.equal(0, r.code, r.stderr)
      local records = assert(cli.csv_parse(r.stdout))
      assert.equal(21, #records)
      local col = {}
      for c, name in ipairs(records[1]) do col[name] = c end
      local pairs_seen, distinct = {}, 0
      for i = 2, #records do
        assert.equal("CLASSIFIED", records[i][col.status])
        assert.truthy(records[i][col.hsCodeDescription]:find("%a"), "a description for " .. records[i][1])
        local k = records[i][col.country] .. " " .. records[i][col.hsCode]
        if not pairs_seen[k] then pairs_seen[k], distinct = true, distinct + 1 end
      end
      assert.same({ "TS-001", "610910" }, { records[2][col.itemCode], records[2][col.hsCode] })
      -- one description lookup per country and code, cached for the rest
      assert.equal(distinct, H.route(e, "definitions_hierarchy"))
      assert.matches("20 items: 20 classified", r.stderr)
    end)
  end)

  describe("lookup", function()
    it("prints the hierarchy from the chapter down to the code", function()
      local r = hscode("lookup", "6109.10", "--country", "US")
      assert.equal(0, r.code, r.stderr)
      assert.equal("61              Apparel and clothing accessories; knitted or crocheted\n"
        .. "  6109          T-shirts, singlets and other vests; knitted or crocheted\n"
        .. "    610910      T-shirts, singlets and other vests; of cotton, knitted or crocheted\n", r.stdout)
    end)

    it("lists the children with --children, as JSON with --json", function()
      local r = hscode("lookup", "6109", "--country", "US", "--children", "--json")
      assert.equal(0, r.code, r.stderr)
      local t = cjson.decode(r.stdout)
      assert.same({ "", "61", "6109" }, { t.hierarchy[1].hsCode, t.hierarchy[2].hsCode, t.hierarchy[3].hsCode })
      assert.equal(0, t.hierarchy[1].parentHsCodeId)
      assert.same({ "610910", "610990" }, { t.children[1].hsCode, t.children[2].hsCode })
    end)

    it("exits 1 for a code that is not in the tariff", function()
      local r = hscode("lookup", "010199", "--country", "US")
      assert.equal(1, r.code)
      assert.equal("hscode: no HS code 010199 in the tariff of US\n", r.stderr)
    end)
  end)

  describe("token", function()
    it("shows type, scope and expiry, not the token; --show-secret shows it", function()
      local r = hscode("token")
      assert.equal(0, r.code, r.stderr)
      assert.matches("type +Bearer\n", r.stdout)
      assert.matches("scope +hs%-code%-classification\n", r.stdout)
      assert.matches("expires at +%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%dZ %(in 3%d%d%d s%)\n", r.stdout)
      assert.matches("source +new\n", r.stdout)
      assert.falsy(r.stdout:find("access token", 1, true))
      local tokens = H.cached_tokens(cache)
      assert.equal(1, #tokens)

      r = hscode("token", "--show-secret")
      assert.equal(0, r.code)
      assert.matches("source +cached\n", r.stdout)
      assert.matches("access token +" .. tokens[1] .. "\n", r.stdout)
    end)

    it("reuses the cached token across runs: one token request for three commands", function()
      assert.equal(0, hscode("token").code)
      assert.equal(0, hscode("classify", "green tea", "--country", "US").code)
      assert.equal(0, hscode("lookup", "0902", "--country", "US").code)
      assert.equal(1, H.grants(e))
      local p = io.popen("stat -c %a " .. cache .. "/avalara-hscode/tokens.db")
      assert.equal("600", p:read("*l"))
      p:close()
    end)

    it("renews a cached token the service no longer accepts", function()
      assert.equal(0, hscode("token").code)
      e:request("POST", "/_emulator/tokens/expire")
      local r = hscode("classify", "green tea", "--country", "US")
      assert.equal(0, r.code, r.stderr)
      assert.equal(2, H.grants(e))
    end)
  end)

  describe("correctness", function()
    it("a wrong license key fails at once, even with a valid token cached for the right one", function()
      assert.equal(0, hscode("token").code)
      env.AVALARA_ACCOUNT_ID, env.AVALARA_COMPANY_ID = "2000000001", "1001"
      env.AVALARA_LICENSE_KEY = "WRONG-KEY-999"
      local r = hscode("classify", "green tea", "--country", "US")
      assert.equal(3, r.code)
      assert.matches("^hscode: classification failed: .*invalid_client", r.stderr)
      -- the cache holds a digest of the key, never the key
      local text = (H.slurp(cache .. "/avalara-hscode/tokens.db") or "")
        .. (H.slurp(cache .. "/avalara-hscode/tokens.db-wal") or "")
      assert.truthy(#text > 0)
      assert.falsy(text:find("DEMO-LICENSE-KEY-0001", 1, true))
      assert.falsy(text:find("WRONG-KEY-999", 1, true))
    end)

    it("--wait N waits N seconds: the last poll is just before the deadline, its answer within it", function()
      e:configure { classification_delay = 2.4 }
      local r = hscode("classify", "green tea", "--country", "US", "--wait", "3")
      assert.equal(0, r.code, r.stderr)
      assert.matches("status +CLASSIFIED", r.stdout)
      r = hscode("classify", "black tea", "--country", "US", "--wait", "0.5", "--item-code", "T-2")
      assert.equal(1, r.code)
      assert.matches("still PENDING after 0.5 s", r.stderr)
    end)

    it("warns once when the token cache cannot be written, and works", function()
      H.write(cache .. "/avalara-hscode", "a file where the cache folder should be")
      local r = hscode("lookup", "0902", "--country", "US")
      assert.equal(0, r.code, r.stderr)
      local _, n = r.stderr:gsub("hscode: warning: cannot keep the token in avalara%.store%.file%(", "")
      assert.equal(1, n, r.stderr)
    end)

    it("hints at the emulator URL when nothing answers there", function()
      -- a port bound here without listening: refused, and no other server can take it meanwhile
      local closed = assert(require("socket").tcp())
      assert(closed:bind("127.0.0.1", 0))
      local _, port = closed:getsockname()
      local r = H.run({ "token" }, { AVALARA_ENVIRONMENT = "local",
        AVALARA_EMULATOR_URL = "http://127.0.0.1:" .. port }, cache)
      closed:close()
      assert.equal(1, r.code, r.stderr)
      assert.matches("^hscode: cannot get an access token: .*\nIs the emulator running at http://127%.0%.0%.1:%d+%? "
        .. "Start it with 'make emulator'", r.stderr)
    end)

    it("--version, and get ID", function()
      local r = hscode("--version")
      assert.equal(0, r.code, r.stderr)
      assert.matches("^hscode %(avalara%-hscode%) %S+\nlibcurl/", r.stdout)
      assert.equal(0, hscode("classify", "men's cotton t-shirt", "--country", "US", "--item-code", "G-1").code)
      r = hscode("get", "1001-G-1-US")
      assert.equal(0, r.code, r.stderr)
      assert.matches("hs code +610910\n", r.stdout)
      assert.matches("id +1001%-G%-1%-US\n", r.stdout)
      r = hscode("get", "1001-NOPE-US")
      assert.equal(1, r.code)
      assert.equal("hscode: no classification 1001-NOPE-US\n", r.stderr)
    end)

    it("Ctrl-C in any command: at once, a plain message, never a Lua stack trace", function()
      -- The reply would take 30 s: the command ends well before it, even
      -- when this run's shell ignores SIGINT (a background job, as in CI).
      e:configure { latency_ms = 30000 }
      local job = H.spawn({ "lookup", "0902", "--country", "US" }, env, cache)
      require("socket").sleep(2) -- started and waiting for its reply, even on a loaded machine
      H.signal(job, "INT")
      local r = H.finish(job, 20)
      e:configure { latency_ms = 0 }
      assert.equal(130, r.code, r.stderr)
      assert.matches("hscode: interrupted\n$", r.stderr)
      assert.falsy(r.stderr:find("traceback", 1, true))
      assert.falsy(r.stderr:find("lua5.4", 1, true))
    end)

    it("SIGTERM: at once, exit 143 and a plain message", function()
      e:configure { latency_ms = 30000 }
      local job = H.spawn({ "lookup", "0902", "--country", "US" }, env, cache)
      require("socket").sleep(2) -- started and waiting for its reply, even on a loaded machine
      H.signal(job, "TERM")
      local r = H.finish(job, 20)
      e:configure { latency_ms = 0 }
      assert.equal(143, r.code, r.stderr)
      assert.matches("hscode: terminated\n$", r.stderr)
    end)

    it("Ctrl-C at any moment of its start (modules loading, the token store opening): exit 130, no trace", function()
      for i = 1, 10 do -- from the launcher's search for its modules (0 ms) to the request (~80 ms)
        local job = H.spawn({ "lookup", "0902", "--country", "US" }, env, cache)
        require("socket").sleep(0.009 * (i - 1))
        H.signal(job, "INT")
        local r = H.finish(job, 20)
        if r.code ~= 0 then -- it may have finished first
          assert.equal(130, r.code, r.stderr)
          assert.matches("hscode: interrupted\n$", r.stderr)
          assert.falsy(r.stderr:find("traceback", 1, true), r.stderr)
          assert.falsy(r.stderr:find("internal error", 1, true), r.stderr)
        end
      end
    end)
  end)

  describe("--help", function()
    for _, command in ipairs { "classify", "batch", "lookup", "get", "token" } do
      it("documents " .. command .. " (--help, -h and help " .. command .. ")", function()
        local r = hscode(command, "--help")
        assert.equal(0, r.code)
        assert.matches("^Usage: hscode " .. command, r.stdout)
        assert.matches("Global options", r.stdout)
        assert.equal(r.stdout, hscode("help", command).stdout)
        assert.equal(r.stdout, hscode(command, "-h").stdout)
      end)
    end

    it("documents the commands, the variables, the exit codes and the risk of --license-key", function()
      local r = hscode("--help")
      assert.equal(0, r.code)
      for _, s in ipairs { "classify", "batch", "lookup", "token", "AVALARA_ACCOUNT_ID", "AVALARA_LICENSE_KEY",
        "AVALARA_COMPANY_ID", "AVALARA_ENVIRONMENT", "AVALARA_EMULATOR_URL", "AVALARA_CAFILE",
        "visible to other users", "Exit status", "demo account" } do
        assert.truthy(r.stdout:find(s, 1, true), s)
      end
      assert.equal(r.stdout, hscode("help").stdout)
    end)
  end)

  describe("bad input", function()
    -- Runs hscode expecting `code` and a stderr matching `pattern`, with no request sent.
    local function refused(code, pattern, ...)
      local r = hscode(...)
      assert.equal(code, r.code, r.stderr)
      assert.equal("", r.stdout)
      assert.matches(pattern, r.stderr)
      assert.equal(0, e:counters().requests)
    end

    it("an unreadable file, a missing column, an empty field, a broken quote: exit 2", function()
      refused(2, "^hscode: cannot read " .. dir .. "/nope%.csv: No such file or directory\n$",
        "batch", dir .. "/nope.csv", "--country", "US")
      local f = H.write(dir .. "/cols.csv", "itemCode,name\nA,shirt\n")
      refused(2, "^hscode: .*cols%.csv: no 'description' column %(the header has: itemCode, name%); name it with %-%-map "
        .. "description=COLUMN\n$",
        "batch", f, "--country", "US")
      f = H.write(dir .. "/empty.csv", "itemCode,description\nA,shirt\n\nB,\n")
      refused(2, "empty%.csv line 4: description is empty", "batch", f, "--country", "US")
      f = H.write(dir .. "/quote.csv", 'itemCode,description\nA,"shirt\nB,tea\n')
      refused(2, "quote%.csv: line 2: a quoted field is never closed", "batch", f, "--country", "US")
      f = H.write(dir .. "/bad.json", '[{"itemCode": "A"')
      refused(2, "bad%.json: not valid JSON", "batch", f, "--country", "US")
      refused(2, "no items", "batch", H.write(dir .. "/none.csv", "itemCode,description\n"), "--country", "US")
      f = H.write(dir .. "/long.csv", "itemCode,description\nA,shirt\nB," .. string.rep("x", 256) .. "\n")
      refused(2, "long%.csv line 3: 'description' is longer than 255 characters %(256%)", "batch", f, "--country", "US")
      refused(2, "'description' is longer than 255 characters", "classify", string.rep("y", 300), "--country", "US")
    end)

    it("bad country codes, before any request: exit 2", function()
      local f = H.write(dir .. "/c.csv", "itemCode,description,country\nA,shirt,US\nB,tea,USA\n")
      refused(2, "^hscode: bad country code 'USA' %(two letters: did you mean US%?%)\nTry 'hscode classify %-%-help'%.\n$",
        "classify", "shirt", "--country", "USA")
      refused(2, "c%.csv line 3: bad country code 'USA'", "batch", f)
      refused(2, "^hscode: bad country code '1X'", "batch", f, "--country", "1X")
      refused(2, "line 2: no country %(add a country column or use %-%-country%)", "batch",
        H.write(dir .. "/c3.csv", "itemCode,description\nA,shirt\n"))
      refused(2, "%-%-country is required", "lookup", "6109")
      refused(2, "bad HS code '61/09'", "lookup", "61/09", "--country", "US")
    end)

    it("bad options: exit 2", function()
      refused(2, "unknown option '%-%-colour'.*Try 'hscode batch %-%-help'", "batch", "x.csv", "--colour")
      refused(2, "%-%-concurrency must be a positive integer %(got '0'%)", "batch", "x.csv", "--concurrency", "0")
      refused(2, "option '%-%-country' requires an argument", "classify", "tea", "--country")
      refused(2, "no command 'frobnicate'", "frobnicate")
      refused(2, "unknown environment 'staging'", "token", "--env", "staging")
      refused(2, "cannot write .*/no/such/dir/out%.csv", "batch", "examples/products.csv",
        "--out", dir .. "/no/such/dir/out.csv")
    end)

    it("missing or wrong credentials: exit 3, the key never shown", function()
      env = { AVALARA_ENVIRONMENT = "production" }
      refused(3, "^hscode: no account ID: set AVALARA_ACCOUNT_ID %(or use %-%-account%)\n$", "token")
      env = { AVALARA_ENVIRONMENT = "local", AVALARA_EMULATOR_URL = e.http_url, AVALARA_ACCOUNT_ID = "2000000001",
        AVALARA_COMPANY_ID = "1001" }
      refused(3, "no license key: set AVALARA_LICENSE_KEY", "token")
      env.AVALARA_LICENSE_KEY = "WRONG-KEY-1234"
      local r = hscode("batch", "examples/products.csv", "--out", dir .. "/never.csv")
      assert.equal(3, r.code)
      assert.matches("^hscode: cannot get an access token: .*invalid_client", r.stderr)
      assert.equal(0, H.route(e, "classification_create"))
      assert.falsy(H.listing(dir):find("never", 1, true))
    end)
  end)
end)
