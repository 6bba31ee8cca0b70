-- hscode batch and hscode items classify --excel: CSV for Excel and Google
-- Sheets (a UTF-8 BOM, code cells as ="0101" so that leading zeros stay),
-- read back by hscode itself; and the country column of the table views.
local H = require "spec.support.cli"

local BOM = "\239\187\191"

local slurp = require("spec.support.files").read

describe("hscode --excel", function()
  local w = H.world()
  local function hscode(...)
    return H.run({ ... }, w.env, w.cache)
  end
  local function catalog(name)
    return H.write(w.dir .. "/" .. name, "itemCode,description,country\n00123,fresh apples,US\n0456,wooden chair,CA\n")
  end

  it("batch: a BOM, item and HS codes as =\"0101\"; the output reads back as its codes, also as a new input",
    function()
      local input, out = catalog("in.csv"), w.dir .. "/out.csv"
      local r = hscode("batch", input, "--out", out, "--excel", "--keep-journal")
      assert.equal(0, r.code, r.stderr)
      local text = slurp(out)
      assert.equal(BOM, text:sub(1, 3))
      assert.matches('\r\n"=""00123""",fresh apples,US,CLASSIFIED,"=""0%d+""",', text)
      local rows = H.read_csv(out)
      assert.equal("00123", rows[1].itemCode)
      assert.matches("^0%d+$", rows[1].hsCode)
      assert.equal("0456", rows[2].itemCode)
      -- its own output as an input: the codes as they were, not ="00123"
      local again = w.dir .. "/again.csv"
      r = hscode("batch", out, "--out", again)
      assert.equal(0, r.code, r.stderr)
      rows = H.read_csv(again)
      assert.equal("00123", rows[1].itemCode)
      assert.equal("0456", rows[2].itemCode)
      assert.equal("CA", rows[2].country)
      assert.falsy(slurp(again):find("=", 1, true))
      -- run again (from the journal): the same spreadsheet output
      r = hscode("batch", input, "--out", out, "--excel")
      assert.equal(0, r.code, r.stderr)
      assert.equal(text, slurp(out))
    end)

  it("batch --excel writes CSV (also on stdout); with another --format it is refused before any request", function()
    local input = catalog("in.csv")
    local r = hscode("batch", input, "--excel")
    assert.equal(0, r.code, r.stderr)
    assert.equal(BOM .. "itemCode,description,country,status,hsCode,", r.stdout:sub(1, 46))
    r = hscode("batch", input, "--excel", "--format", "json", "--out", w.dir .. "/x.json")
    assert.equal(2, r.code, r.stderr)
    assert.matches("%-%-excel writes CSV; it cannot go with %-%-format json", r.stderr)
    assert.falsy(r.stderr:find("traceback", 1, true))
    assert.equal(2, H.route(w.e, "classification_create"))
  end)

  it("batch: the table shows each row's country", function()
    local r = hscode("batch", catalog("in.csv"))
    assert.equal(0, r.code, r.stderr)
    assert.matches("^ITEM +CC +HS CODE +STATUS +DESCRIPTION\n00123 +US +0%d+ +CLASSIFIED .*\n0456 +CA +", r.stdout)
  end)

  it("items classify: a BOM and codes as =\"0101\", which items verify reads back; the table has a country column",
    function()
      local input, out = catalog("items.csv"), w.dir .. "/codes.csv"
      local r = hscode("items", "classify", input, "--countries", "US,DE", "--out", out, "--excel")
      assert.equal(0, r.code, r.stderr)
      local text = slurp(out)
      assert.equal(BOM .. "itemCode,itemId,country,", text:sub(1, 27))
      assert.matches('\r\n"=""00123""",[^,]*,US,[^,]*,"=""0%d+""",', text)
      local rows = H.read_csv(out)
      assert.equal("00123", rows[1].itemCode)
      assert.matches("^0%d+$", rows[1].hsCode)
      local v = hscode("items", "verify", out)
      assert.equal(0, v.code, v.stderr)
      assert.matches("4 codes verified and kept", v.stdout)
      local listed = hscode("items", "list", "--countries", "US", "--excel")
      assert.equal(0, listed.code, listed.stderr)
      assert.equal(BOM .. "itemCode,", listed.stdout:sub(1, 12))
      assert.matches('\r\n"=""00123""",[^,]*,US,[^,]*,"=""0%d+""",', listed.stdout)
      r = hscode("items", "classify", input, "--countries", "US,DE")
      assert.equal(0, r.code, r.stderr)
      assert.matches("^ITEM +CC +STATUS +HS CODE", r.stdout)
      assert.matches("\n00123 +DE +", r.stdout)
      r = hscode("items", "classify", input, "--countries", "US", "--excel", "--format", "table")
      assert.equal(2, r.code, r.stderr)
      assert.matches("%-%-excel writes CSV; it cannot go with %-%-format table", r.stderr)
    end)
end)
