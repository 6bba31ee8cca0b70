-- Issue 23, item 7 through bin/hscode: journals that fit a nightly job. The
-- journal is removed after a run with nothing left to do unless
-- --keep-journal; a kept journal and an edited catalog: only the edited and
-- new rows are created, removed rows vanish, the summary counts each; another
-- batch's journal is still refused; --dry-run says what a run would do and
-- sends nothing.
local H = require "spec.support.cli"

local WORDS = require("spec.support.client").WORDS

-- A CSV catalog: { code, description } pairs, US.
local function catalog(path, rows)
  local lines = { "itemCode,description,country" }
  for _, r in ipairs(rows) do lines[#lines + 1] = r[1] .. "," .. r[2] .. ",US" end
  return H.write(path, table.concat(lines, "\n") .. "\n")
end

local function rows_of(n)
  local rows = {}
  for i = 1, n do rows[i] = { "SKU-" .. i, WORDS[(i - 1) % #WORDS + 1] } end
  return rows
end

describe("hscode batch's journal", function()
  local e, cache, dir, env

  local function hscode(...)
    return H.run({ ... }, env, cache)
  end
  local function creates() return H.route(e, "classification_create") end
  local function exists(path)
    local f = io.open(path, "rb")
    if f then f:close() end
    return f ~= nil
  end
  local function journal_files(out)
    local n = 0
    for _, s in ipairs { "", "-wal", "-shm", "-journal" } do
      if exists(out .. ".journal" .. s) then n = n + 1 end
    end
    return n
  end

  local w = H.world()
  before_each(function()
    e, cache, env = w.e, w.cache, w.env
    dir = H.tmpdir()
  end)
  after_each(function() H.rmdir(dir) end)

  it("is removed after a run that went well, with its -wal and -shm; kept with --keep-journal", function()
    local input, out = catalog(dir .. "/in.csv", rows_of(3)), dir .. "/out.csv"
    local r = hscode("batch", input, "--out", out)
    assert.equal(0, r.code, r.stderr)
    assert.equal(0, journal_files(out), H.listing(dir))
    assert.equal(3, #H.read_csv(out))
    r = hscode("batch", input, "--out", out, "--keep-journal")
    assert.equal(0, r.code, r.stderr)
    assert.is_true(exists(out .. ".journal"), H.listing(dir))
    -- the same catalog again: nothing created, every row from the journal
    local before = creates()
    r = hscode("batch", input, "--out", out, "--keep-journal")
    assert.equal(0, r.code, r.stderr)
    assert.equal(before, creates())
    assert.matches("3 from the journal", r.stderr)
    assert.matches("against the journal: 3 unchanged, 0 changed, 0 new, 0 removed", r.stderr)
    -- without --keep-journal, the run that needed nothing removes it
    r = hscode("batch", input, "--out", out)
    assert.equal(0, r.code, r.stderr)
    assert.equal(0, journal_files(out), H.listing(dir))
    assert.equal(before, creates())
  end)

  it("is kept after a run with failed rows, saying how to go on", function()
    local input, out = catalog(dir .. "/in.csv", rows_of(2)), dir .. "/out.csv"
    e:fault("classification_get", "invalid_json", 20, { status = 400 })
    local r = hscode("batch", input, "--out", out, "--concurrency", "1")
    assert.equal(1, r.code, r.stderr)
    assert.is_true(exists(out .. ".journal"))
    assert.matches("the journal .*out%.csv%.journal keeps what is done; to try the failed or pending rows again",
      r.stderr)
    assert.matches("\n  hscode batch .*in%.csv %-%-out .*out%.csv %-%-concurrency 1\n", r.stderr)
  end)

  it("refuses --keep-journal without a journal of its own (no --out FILE, no --journal)", function()
    local r = hscode("batch", catalog(dir .. "/in.csv", rows_of(1)), "--keep-journal")
    assert.equal(2, r.code, r.stderr)
    assert.matches("%-%-keep%-journal needs a journal of its own", r.stderr)
    assert.equal(0, e:counters().requests)
  end)

  it("a nightly catalog: an edited row is created again and only it, a new one is, a removed one vanishes", function()
    local rows, out = rows_of(6), dir .. "/out.csv"
    local input = catalog(dir .. "/in.csv", rows)
    assert.equal(0, hscode("batch", input, "--out", out, "--keep-journal").code)
    assert.equal(6, creates())
    -- one description edited; SKU-4 removed; SKU-7 added at the top (every row moves)
    rows[2] = { "SKU-2", "stainless steel kitchen knife" }
    table.remove(rows, 4)
    table.insert(rows, 1, { "SKU-7", "leather handbag" })
    catalog(input, rows)
    local r = hscode("batch", input, "--out", out, "--keep-journal")
    assert.equal(0, r.code, r.stderr)
    assert.equal(8, creates()) -- SKU-2 (edited) and SKU-7 (new)
    assert.matches("against the journal: 4 unchanged, 1 changed, 1 new, 1 removed", r.stderr)
    local got = H.read_csv(out)
    assert.equal(6, #got)
    local codes = {}
    for i, row in ipairs(got) do
      codes[i] = row.itemCode
      assert.equal("CLASSIFIED", row.status, row.itemCode)
    end
    assert.same({ "SKU-7", "SKU-1", "SKU-2", "SKU-3", "SKU-5", "SKU-6" }, codes)
    assert.equal("stainless steel kitchen knife", got[3].description)
    -- the edited description was classified: SKU-2 has the code of SKU-3, a knife too
    assert.equal(got[4].hsCode, got[3].hsCode)
    -- and again: all of it from the journal, SKU-4 gone from it too
    r = hscode("batch", input, "--out", out, "--keep-journal")
    assert.equal(0, r.code, r.stderr)
    assert.equal(8, creates())
    assert.matches("against the journal: 6 unchanged, 0 changed, 0 new, 0 removed", r.stderr)
    -- SKU-4 back (as it was): it is new to the journal
    table.insert(rows, { "SKU-4", WORDS[4] })
    catalog(input, rows)
    r = hscode("batch", input, "--out", out)
    assert.equal(0, r.code, r.stderr)
    assert.equal(9, creates())
    assert.matches("against the journal: 6 unchanged, 0 changed, 1 new, 0 removed", r.stderr)
    assert.equal(0, journal_files(out))
  end)

  it("killed (SIGKILL), then edited (a row added at the top, one edited, one removed): each create once", function()
    e:configure { latency_ms = 40 }
    local rows, out = rows_of(200), dir .. "/out.csv"
    local input = catalog(dir .. "/in.csv", rows)
    local job = H.spawn({ "batch", input, "--out", out, "--concurrency", "8" }, env, cache)
    H.until_true(function() return creates() >= 40 end)
    H.signal(job, "KILL")
    assert.equal(137, H.finish(job).code)
    assert.is_true(creates() < 150, "killed early enough: " .. creates())
    -- rows 199 and 200 were not sent: 199 removed, 200 edited; a new row first (every row moves)
    rows[200] = { "SKU-200", "wool sweater for men" }
    table.remove(rows, 199)
    table.insert(rows, 1, { "NEW-1", "fresh apples" })
    catalog(input, rows)
    -- at once after the kill: a lookup's 404 waits for the killed run's timeout (batch_kill_spec)
    local r = hscode("batch", input, "--out", out, "--concurrency", "8", "--timeout", "2")
    assert.equal(0, r.code, r.stderr)
    -- 198 rows of the first run (the creates it sent looked up by id, never sent again), SKU-200, NEW-1
    assert.equal(200, creates())
    assert.matches("against the journal: 198 unchanged, 1 changed, 1 new, 1 removed", r.stderr)
    local got = H.read_csv(out)
    assert.equal(200, #got)
    assert.same({ "NEW-1", "SKU-1", "SKU-198", "SKU-200" }, { got[1].itemCode, got[2].itemCode, got[199].itemCode,
      got[200].itemCode })
    for _, row in ipairs(got) do assert.equal("CLASSIFIED", row.status, row.itemCode) end
    assert.equal(0, journal_files(out))
  end)

  it("still refuses the journal of another batch (another default country, another company)", function()
    local out = dir .. "/out.csv"
    local input = H.write(dir .. "/in.csv", "itemCode,description\nA,cotton t-shirt\nB,leather handbag\n")
    assert.equal(0, hscode("batch", input, "--country", "US", "--out", out, "--keep-journal").code)
    local requests = e:counters().requests
    local r = hscode("batch", input, "--country", "CA", "--out", out)
    assert.equal(2, r.code)
    assert.matches("^hscode: the journal .*out%.csv%.journal belongs to another batch %(its country is US, this "
      .. "one's is CA%)", r.stderr)
    assert.matches("Use %-%-restart to discard it", r.stderr)
    r = hscode("batch", input, "--country", "US", "--out", out, "--company", "1002", "--dry-run")
    assert.equal(2, r.code)
    assert.matches("belongs to another batch %(its company is 1001, this one's is 1002%)", r.stderr)
    assert.equal(requests, e:counters().requests)
  end)

  it("--dry-run: checks, says what a run would do, sends nothing, writes nothing, leaves the journal", function()
    local rows, out = rows_of(5), dir .. "/out.csv"
    local input = catalog(dir .. "/in.csv", rows)
    -- no journal yet: every row would be created; none is made
    local before = e:counters()
    local r = hscode("batch", input, "--out", out, "--dry-run")
    assert.equal(0, r.code, r.stderr)
    assert.matches("dry run of .*in%.csv %(nothing sent, nothing written%): 5 rows", r.stdout)
    assert.matches("to create +5\n", r.stdout)
    assert.matches("create line 2: SKU%-1 for US\n", r.stdout)
    assert.falsy(exists(out))
    assert.equal(0, journal_files(out))
    assert.same(before, e:counters())

    assert.equal(0, hscode("batch", input, "--out", out, "--keep-journal").code)
    local listing, text = H.listing(dir), H.slurp(out)
    rows[3] = { "SKU-3", "wool sweater for women" }
    rows[#rows + 1] = { "SKU-1", WORDS[1] } -- a duplicate
    rows[#rows + 1] = { "SKU-9", "" } -- invalid
    table.remove(rows, 5)
    catalog(input, rows)
    before = e:counters()
    local jtext = H.slurp(out .. ".journal")
    -- an invalid row: exit 2 as a run would, the problem named
    r = hscode("batch", input, "--out", out, "--dry-run")
    assert.equal(2, r.code, r.stderr)
    assert.matches("line 7: description is empty", r.stderr)
    r = hscode("batch", input, "--out", out, "--dry-run", "--skip-invalid")
    assert.equal(0, r.code, r.stderr)
    assert.matches("to create +1 +%(1 changed%)", r.stdout)
    assert.matches("from the journal +3\n", r.stdout)
    assert.matches("duplicates %(skipped%) +1", r.stdout)
    assert.matches("invalid %(skipped%) +1\n", r.stdout)
    assert.matches("against the journal .*: 3 unchanged, 1 changed, 0 new, 1 removed", r.stdout)
    assert.matches("create line 4: SKU%-3 for US %(changed%)", r.stdout)
    assert.same(before, e:counters())
    assert.equal(listing, H.listing(dir))
    assert.equal(text, H.slurp(out))
    assert.equal(jtext, H.slurp(out .. ".journal"))
    -- --restart --dry-run: as without a journal, and the journal stays
    r = hscode("batch", input, "--out", out, "--dry-run", "--skip-invalid", "--restart")
    assert.equal(0, r.code, r.stderr)
    assert.matches("to create +4\n", r.stdout)
    assert.equal(jtext, H.slurp(out .. ".journal"))
    -- the run itself does what the dry run said
    r = hscode("batch", input, "--out", out, "--skip-invalid")
    assert.equal(0, r.code, r.stderr)
    assert.equal(before.routes.classification_create + 1, creates())
  end)
end)
