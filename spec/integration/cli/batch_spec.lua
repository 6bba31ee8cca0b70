-- hscode batch at catalog scale, as a user runs it: killed with Ctrl-C,
-- SIGTERM and SIGKILL and run again, stopped by the quota, held to a rate
-- limit, with journals torn or of another input, and --out
-- through a symlink, into a FIFO, at a directory.
local cjson = require "cjson"
local emu = require "spec.support.emulator"
local H = require "spec.support.cli"

local WORDS = require("spec.support.client").WORDS

-- A CSV catalog of n rows (an extra column that must come back in the output).
local function catalog(path, n, first)
  local lines = { "itemCode,description,supplier" }
  for i = first or 1, (first or 1) + n - 1 do
    lines[#lines + 1] = string.format("SKU-%d,%s,S%d", i, WORDS[(i - 1) % #WORDS + 1], i % 7)
  end
  return H.write(path, table.concat(lines, "\n") .. "\n")
end

local read_csv = H.read_csv

describe("hscode batch", function()
  local e, cache, dir, env

  local function hscode(...)
    return H.run({ ... }, env, cache)
  end
  local function creates() return H.route(e, "classification_create") end

  -- Every row of the catalog classified, in input order, with its id and its extra column.
  local function complete(out, n)
    local rows = read_csv(out)
    assert.equal(n, #rows)
    for i = 1, n do
      assert.equal("SKU-" .. i, rows[i].itemCode)
      assert.equal("CLASSIFIED", rows[i].status, "row " .. i)
      assert.equal("1001-SKU-" .. i .. "-US", rows[i].id)
      assert.equal("S" .. i % 7, rows[i].supplier)
    end
  end

  setup(function() e = emu.start() end)
  teardown(function() e:stop() end)
  before_each(function()
    e:reset()
    e:configure { classification_delay = 0 }
    cache, dir = H.tmpdir(), H.tmpdir()
    env = { AVALARA_ENVIRONMENT = "local", AVALARA_EMULATOR_URL = e.http_url }
  end)
  after_each(function()
    H.rmdir(cache)
    H.rmdir(dir)
  end)

  describe("interrupted", function()
    before_each(function() e:configure { latency_ms = 40 } end)

    -- A batch of n rows killed (SIGKILL) once `after` creates were made: input, out.
    local function killed(n, after)
      local input, out = catalog(dir .. "/in.csv", n), dir .. "/out.csv"
      local job = H.spawn({ "batch", input, "--country", "US", "--out", out, "--concurrency", "8" }, env, cache)
      H.until_true(function() return creates() >= after end)
      H.signal(job, "KILL")
      assert.equal(137, H.finish(job).code)
      return input, out
    end

    it("by Ctrl-C: finishes what is in flight, writes what is done, says how to resume (130); the rerun "
      .. "creates nothing twice", function()
      local input, out = catalog(dir .. "/in.csv", 400), dir .. "/out.csv"
      local job = H.spawn({ "batch", input, "--country", "US", "--out", out, "--concurrency", "8" }, env, cache)
      H.until_true(function() return creates() >= 60 end)
      H.signal(job, "INT")
      local r = H.finish(job)
      assert.equal(130, r.code, r.stderr)
      assert.falsy(r.stderr:find("traceback", 1, true))
      assert.matches("stopping: finishing the requests in flight %(Ctrl%-C again to stop at once%)", r.stderr)
      assert.matches("interrupted: %d+ of 400 rows written to " .. out:gsub("%p", "%%%0"), r.stderr)
      assert.matches("To resume, run the same command again:\n  hscode batch ", r.stderr)
      -- a valid CSV of the first rows, in order, each created one with its id; no temporary file
      local rows = read_csv(out)
      assert.is_true(#rows > 0 and #rows < 400)
      for i, row in ipairs(rows) do
        assert.equal("SKU-" .. i, row.itemCode)
        assert.equal("1001-SKU-" .. i .. "-US", row.id)
      end
      assert.same({ "in.csv", "out.csv", "out.csv.journal" }, (function()
        local names = {}
        for n in H.listing(dir):gmatch("[^\n]+") do names[#names + 1] = n end
        return names
      end)())
      local sent = creates()
      assert.is_true(sent < 400, "the rest was not sent")

      r = hscode("batch", input, "--country", "US", "--out", out, "--concurrency", "8")
      assert.equal(0, r.code, r.stderr)
      complete(out, 400)
      assert.equal(400, creates())
      assert.matches("from the journal", r.stderr)
    end)

    it("by a second Ctrl-C: stops at once", function()
      e:configure { latency_ms = 400 }
      local input, out = catalog(dir .. "/in.csv", 200), dir .. "/out.csv"
      local job = H.spawn({ "batch", input, "--country", "US", "--out", out, "--concurrency", "16" }, env, cache)
      H.until_true(function() return creates() >= 16 end)
      H.signal(job, "INT")
      require("socket").sleep(0.05)
      H.signal(job, "INT")
      local r = H.finish(job)
      assert.equal(130, r.code, r.stderr)
      assert.matches("stopping now", r.stderr)
      assert.matches("To resume", r.stderr)
      r = hscode("batch", input, "--country", "US", "--out", out, "--concurrency", "16")
      assert.equal(0, r.code, r.stderr)
      complete(out, 200)
      assert.equal(200, creates())
    end)

    it("by SIGTERM: the same, exit 143", function()
      local input, out = catalog(dir .. "/in.csv", 300), dir .. "/out.json"
      local job = H.spawn({ "batch", input, "--country", "US", "--out", out }, env, cache)
      H.until_true(function() return creates() >= 40 end)
      H.signal(job, "TERM")
      local r = H.finish(job)
      assert.equal(143, r.code, r.stderr)
      local rows = cjson.decode(H.slurp(out)) -- a whole JSON document
      assert.is_true(#rows > 0 and #rows < 300)
      assert.equal("SKU-1", rows[1].itemCode)
    end)

    it("by SIGKILL: the rerun takes over, the journal's lost answers looked up by id", function()
      local input, out = killed(400, 100)
      local gets = H.route(e, "classification_get")
      -- at once after the kill: a lookup's 404 waits for the killed run's timeout (batch_kill_spec)
      local r = hscode("batch", input, "--country", "US", "--out", out, "--concurrency", "8", "--timeout", "2")
      assert.equal(0, r.code, r.stderr)
      complete(out, 400)
      assert.equal(400, creates())
      assert.is_true(H.route(e, "classification_get") > gets)
      assert.falsy(H.listing(dir):find("partial", 1, true), "the killed run's temporary file is gone")
    end)

    it("by SIGKILL with a torn journal write: the rerun still creates nothing twice", function()
      local input, out = killed(300, 50)
      local f = assert(io.open(out .. ".journal-wal", "ab"))
      f:write(("\7torn record"):rep(300))
      f:close()
      -- at once after the kill: a lookup's 404 waits for the killed run's timeout (batch_kill_spec)
      local r = hscode("batch", input, "--country", "US", "--out", out, "--timeout", "2")
      assert.equal(0, r.code, r.stderr)
      complete(out, 300)
      assert.equal(300, creates())
    end)
  end)

  it("stops at the quota (item 101 of 150): the rest not attempted; a rerun with more quota finishes", function()
    e:configure { quotas = { ["2000000002"] = 100 } }
    env.AVALARA_ACCOUNT_ID, env.AVALARA_LICENSE_KEY, env.AVALARA_COMPANY_ID = "2000000002", H.SBX_KEY, "1002"
    local input, out = catalog(dir .. "/in.csv", 150), dir .. "/out.csv"
    local r = hscode("batch", input, "--country", "US", "--out", out, "--concurrency", "4")
    assert.equal(1, r.code, r.stderr)
    assert.matches("stopped: the classification quota is used up", r.stderr)
    assert.matches("50 not attempted", r.stderr)
    local rows = read_csv(out)
    assert.equal(150, #rows)
    for i = 1, 100 do assert.equal("CLASSIFIED", rows[i].status) end
    for i = 101, 150 do assert.equal("NOT_ATTEMPTED", rows[i].status) end
    -- it stopped at once: at most the requests already in flight were refused
    assert.is_true(creates() <= 100 + 4)
    local first = creates()
    e:configure { quotas = { ["2000000002"] = 200 } }
    r = hscode("batch", input, "--country", "US", "--out", out, "--concurrency", "4")
    assert.equal(0, r.code, r.stderr)
    rows = read_csv(out)
    for i = 1, 150 do assert.equal("CLASSIFIED", rows[i].status) end
    assert.equal(first + 50, creates())
    assert.same({ ["2000000002"] = 150 }, e:counters().quota_used)
  end)

  it("under a rate limit of 200 requests/s, 2,000 items: none fails", function()
    e:configure { rate_limit = { requests = 200, window = 1 } }
    local input, out = catalog(dir .. "/in.csv", 2000), dir .. "/out.csv"
    local r = hscode("batch", input, "--country", "US", "--out", out, "--concurrency", "32")
    assert.equal(0, r.code, r.stderr)
    local rows = read_csv(out)
    assert.equal(2000, #rows)
    for i = 1, 2000 do assert.equal("CLASSIFIED", rows[i].status, "row " .. i) end
    assert.matches("2000 items: 2000 classified", r.stderr)
  end)

  it("takes a kept journal of another input row by row; refuses another default country; --restart discards "
    .. "it", function()
    local out = dir .. "/out.csv"
    assert.equal(0, hscode("batch", catalog(dir .. "/a.csv", 5), "--country", "US", "--out", out,
      "--keep-journal").code)
    local other = catalog(dir .. "/b.csv", 5, 50)
    local r = hscode("batch", other, "--country", "US", "--out", out, "--keep-journal")
    assert.equal(0, r.code, r.stderr)
    assert.matches("against the journal: 0 unchanged, 0 changed, 5 new, 5 removed", r.stderr)
    assert.equal(10, creates())
    -- other options (another default country) are another batch
    local requests = e:counters().requests
    r = hscode("batch", other, "--country", "CA", "--out", out)
    assert.equal(2, r.code)
    assert.matches("^hscode: the journal .*out%.csv%.journal belongs to another batch %(its country is US, "
      .. "this one's is CA%)", r.stderr)
    assert.matches("Use %-%-restart to discard it", r.stderr)
    assert.equal(requests, e:counters().requests)
    r = hscode("batch", other, "--country", "CA", "--out", out, "--restart")
    assert.equal(0, r.code, r.stderr)
    assert.equal("SKU-50", read_csv(out)[1].itemCode)
    assert.equal(15, creates())
  end)

  describe("--out", function()
    it("through a symlink: the target is written, the link stays", function()
      local target = dir .. "/real.csv"
      H.write(target, "old\n")
      os.execute("ln -s real.csv " .. dir .. "/link.csv")
      local r = hscode("batch", catalog(dir .. "/in.csv", 3), "--country", "US", "--out", dir .. "/link.csv")
      assert.equal(0, r.code, r.stderr)
      local p = io.popen("readlink " .. dir .. "/link.csv")
      assert.equal("real.csv", p:read("*l"))
      p:close()
      complete(target, 3)
    end)

    it("to a FIFO: written directly, the reader gets every row", function()
      local fifo, got = dir .. "/pipe", dir .. "/got.csv"
      os.execute("mkfifo " .. fifo .. " && (cat " .. fifo .. " > " .. got .. " &)")
      local r = hscode("batch", catalog(dir .. "/in.csv", 4), "--country", "US", "--out", fifo, "--format", "csv")
      assert.equal(0, r.code, r.stderr)
      H.until_true(function() return (H.slurp(got) or ""):find("SKU%-4,") ~= nil end, 5)
      complete(got, 4)
      local p = io.popen("stat -c %F " .. fifo)
      assert.equal("fifo", p:read("*l"))
      p:close()
    end)

    it("to /dev/null and to stdout (-): written directly, the device untouched", function()
      local r = hscode("batch", catalog(dir .. "/in.csv", 2), "--country", "US", "--out", "/dev/null")
      assert.equal(0, r.code, r.stderr)
      local p = io.popen("stat -c %F /dev/null")
      assert.equal("character special file", p:read("*l"))
      p:close()
      r = hscode("batch", dir .. "/in.csv", "--country", "US", "--out", "-", "--format", "jsonl")
      assert.equal(0, r.code, r.stderr)
      local lines = {}
      for line in r.stdout:gmatch("[^\n]+") do lines[#lines + 1] = cjson.decode(line) end
      assert.equal(2, #lines)
      assert.equal("SKU-2", lines[2].itemCode)
      assert.equal("S2", lines[2].supplier)
    end)

    it("naming a directory or an unwritable place: refused before any request", function()
      local input = catalog(dir .. "/in.csv", 3)
      local r = hscode("batch", input, "--country", "US", "--out", dir)
      assert.equal(2, r.code)
      assert.matches("^hscode: %-%-out .* is a directory\n", r.stderr)
      r = hscode("batch", input, "--country", "US", "--out", dir .. "/no/such/out.csv")
      assert.equal(2, r.code)
      assert.matches("cannot write .*no directory", r.stderr)
      assert.equal(0, e:counters().requests)
    end)

    it("x.jsonl writes JSON Lines, by its name", function()
      local out = dir .. "/x.jsonl"
      assert.equal(0, hscode("batch", catalog(dir .. "/in.csv", 3), "--country", "US", "--out", out).code)
      local n = 0
      for line in H.slurp(out):gmatch("[^\n]+") do
        n = n + 1
        assert.equal("SKU-" .. n, cjson.decode(line).itemCode)
      end
      assert.equal(3, n)
    end)
  end)

  describe("input", function()
    it("lists every problem at once with its line, and sends nothing; --skip-invalid goes on", function()
      local input = H.write(dir .. "/dirty.csv", "itemCode,description,country\n"
        .. "A,cotton t-shirt,US\n"
        .. "B,,US\n"
        .. string.rep("C", 256) .. ",tea,US\n"
        .. "D,tea,ZZ\n"
        .. "E,caf\233,US\n"
        .. "F,wool sweater,US\n")
      local r = hscode("batch", input, "--out", dir .. "/out.csv")
      assert.equal(2, r.code)
      for _, said in ipairs { "4 rows of .*dirty%.csv are not valid %(nothing was sent%)",
        "dirty%.csv line 3: description is empty",
        "dirty%.csv line 4: 'itemCode' is longer than 255 characters %(256%)",
        "dirty%.csv line 5: unknown country code 'ZZ'", "dirty%.csv line 6: not valid UTF%-8: is the file Latin%-1",
        "use %-%-skip%-invalid" } do
        assert.matches(said, r.stderr)
      end
      assert.equal(0, e:counters().requests)
      assert.falsy(H.listing(dir):find("journal", 1, true))
      r = hscode("batch", input, "--out", dir .. "/out.csv", "--skip-invalid")
      assert.equal(0, r.code, r.stderr) -- every row sent succeeded (issue 23, item 5)
      assert.matches("4 invalid %(skipped%)", r.stderr)
      local rows = read_csv(dir .. "/out.csv")
      assert.same({ "CLASSIFIED", "INVALID", "INVALID", "INVALID", "INVALID", "CLASSIFIED" },
        { rows[1].status, rows[2].status, rows[3].status, rows[4].status, rows[5].status, rows[6].status })
      assert.equal("description is empty", rows[2].errorMessage)
      assert.equal(2, creates())
    end)

    it("names file lines (where a record starts), the first 50 problems; --errors FILE has them all", function()
      local text = { "itemCode,Description,country",
        'A,"cotton', 't-shirt",US', -- one record on lines 2 and 3
        "B,tea,ZZ",
        "A,wool sweater,US" } -- the item code and country of line 2, other details
      for i = 1, 60 do text[#text + 1] = "E" .. i .. ",,US" end -- lines 6 to 65
      local input = H.write(dir .. "/many.csv", table.concat(text, "\n") .. "\n")
      local r = hscode("batch", input, "--out", dir .. "/out.csv")
      assert.equal(2, r.code)
      assert.matches("62 rows of .*many%.csv are not valid", r.stderr)
      assert.matches("many%.csv line 4: unknown country code 'ZZ'", r.stderr)
      assert.matches("many%.csv line 5: item code A for US is also on line 2, with other details", r.stderr)
      assert.matches("many%.csv line 53: description is empty", r.stderr)
      assert.falsy(r.stderr:find("line 54:", 1, true))
      assert.matches("%.%.%. and 12 more: %-%-errors FILE writes all 62", r.stderr)

      local errors = dir .. "/errors.csv"
      r = hscode("batch", input, "--out", dir .. "/out.csv", "--errors", errors)
      assert.equal(2, r.code)
      assert.matches("%.%.%. and 12 more: all 62 are in " .. errors:gsub("%p", "%%%0"), r.stderr)
      local rows = read_csv(errors)
      assert.equal(62, #rows)
      assert.same({ line = "4", column = "country", problem = "unknown country code 'ZZ' (ISO 3166 alpha-2, such as US)" },
        rows[1])
      assert.same({ "5", "itemCode" }, { rows[2].line, rows[2].column })
      assert.same({ line = "65", column = "Description", problem = "description is empty" }, rows[62])
      assert.equal(0, e:counters().requests)

      -- with --skip-invalid the problems are written there too, and the rest goes on
      os.remove(errors)
      r = hscode("batch", input, "--out", dir .. "/out.csv", "--errors", errors, "--skip-invalid")
      assert.equal(0, r.code, r.stderr) -- skipped rows asked for; every row sent succeeded
      assert.equal(62, #read_csv(errors))
      assert.equal(1, creates())

      -- JSON Lines: file lines (a blank line counts); a JSON array: item numbers
      input = H.write(dir .. "/in.jsonl", '{"itemCode":"A","description":"tea","country":"US"}\n\n'
        .. '{"itemCode":"A","description":"mug","country":"US"}\n')
      r = hscode("batch", input, "--out", dir .. "/out2.csv")
      assert.equal(2, r.code)
      assert.matches("in%.jsonl line 3: item code A for US is also on line 1,", r.stderr)
      input = H.write(dir .. "/in.json", '[{"itemCode":"A","description":"tea","country":"US"},'
        .. '{"itemCode":"A","description":"mug","country":"US"}]')
      r = hscode("batch", input, "--out", dir .. "/out3.csv")
      assert.equal(2, r.code)
      assert.matches("in%.json item 2: item code A for US is also on item 1,", r.stderr)
    end)

    it("reads stdin (-), classifies a duplicate once and reports it for both rows", function()
      local input = H.write(dir .. "/in.csv", "itemCode,description,summary\nA,cotton t-shirt,crew neck\n"
        .. "B,leather handbag,\nA,cotton t-shirt,crew neck\n")
      local job = H.spawn({ "batch", "-", "--country", "US", "--out", dir .. "/out.csv" }, env, cache, { stdin = input })
      local r = H.finish(job)
      assert.equal(0, r.code, r.stderr)
      local rows = read_csv(dir .. "/out.csv")
      assert.equal(3, #rows)
      assert.equal("crew neck", rows[3].summary)
      assert.same({ rows[1].hsCode, rows[1].id }, { rows[3].hsCode, rows[3].id })
      assert.equal(2, creates())
      assert.matches("1 duplicates", r.stderr)
    end)

    it("says what to do with a UTF-16 file", function()
      local input = H.write(dir .. "/u16.csv", "\255\254i\0t\0e\0m\0C\0o\0d\0e\0")
      local r = hscode("batch", input, "--country", "US")
      assert.equal(2, r.code)
      assert.matches("u16%.csv is UTF%-16 %(it starts with a UTF%-16 byte order mark%); save it as UTF%-8, or "
        .. "convert it: iconv %-f UTF%-16 %-t UTF%-8", r.stderr)
    end)
  end)

  it("gives every created row its id, failed or not", function()
    local input, out = catalog(dir .. "/in.csv", 2), dir .. "/out.csv"
    e:fault("classification_get", "invalid_json", 20, { status = 400 })
    local r = hscode("batch", input, "--country", "US", "--out", out, "--concurrency", "1")
    assert.equal(1, r.code, r.stderr)
    local rows = read_csv(out)
    assert.same({ "FAILED", "FAILED" }, { rows[1].status, rows[2].status })
    assert.same({ "1001-SKU-1-US", "1001-SKU-2-US" }, { rows[1].id, rows[2].id })
  end)
end)
