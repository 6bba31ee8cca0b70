-- Real exports (issue 23, item 4): hscode batch and hscode items classify with
-- --map, --delimiter (and its detection), several countries per batch,
-- HTML made plain text (--keep-html) and --truncate, against the emulator.
local H = require "spec.support.cli"

local slurp = require("spec.support.files").read
local unpack = table.unpack or unpack -- luacheck: ignore

-- A Shopify export saved by European Excel: BOM, ';', CRLF, HTML, a ';' inside quotes.
local SHOPIFY = "\239\187\191Handle;Variant SKU;Title;Body HTML\r\n"
  .. 'shirt;TS-1;"Men\'s t-shirt; cotton";"<p>Soft <b>cotton</b> &amp; more&nbsp;&#233;</p>"\r\n'
  .. 'mug;MUG-2;"<b>Caf&eacute;</b> mug";<ul><li>stoneware</li></ul>\r\n'

describe("hscode batch with real exports", function()
  local w = H.world()
  local function hscode(...)
    return H.run({ ... }, w.env, w.cache)
  end
  local function creates() return H.route(w.e, "classification_create") end
  local function file(name, text) return H.write(w.dir .. "/" .. name, text) end

  it("--map and a ';' CSV from European Excel (BOM, CRLF), detected; HTML made plain text", function()
    local input, out = file("shopify.csv", SHOPIFY), w.dir .. "/out.csv"
    local r = hscode("batch", input, "--country", "US", "--out", out, "--map", "itemCode=Variant SKU,description=Title,"
      .. "summary=Body HTML")
    assert.equal(0, r.code, r.stderr)
    local rows, header = H.read_csv(out)
    assert.same({ "Handle", "Variant SKU", "Title", "Body HTML", "itemCode", "description", "country", "status" },
      { unpack(header, 1, 8) })
    assert.equal("TS-1", rows[1].itemCode)
    assert.equal("Men's t-shirt; cotton", rows[1].description)
    assert.equal("Café mug", rows[2].description)
    assert.equal("<b>Caf&eacute;</b> mug", rows[2].Title) -- the input's own column as it was
    assert.equal("CLASSIFIED", rows[2].status)
    assert.equal(2, creates())
    -- --delimiter forces it: ',' reads one column, so the mapped ones are missing
    r = hscode("batch", input, "--country", "US", "--out", w.dir .. "/x.csv", "--delimiter", ",",
      "--map", "itemCode=Variant SKU,description=Title", "--restart")
    assert.equal(2, r.code, r.stderr)
    assert.matches("no column 'Title' %(for description%), 'Variant SKU' %(for itemCode%); the header has", r.stderr)
    for _, d in ipairs { ";", "semicolon" } do
      r = hscode("batch", input, "--country", "US", "--out", w.dir .. "/y.csv", "--delimiter", d,
        "--map", "itemCode=Variant SKU,description=Title")
      if d == ";" then assert.equal(0, r.code, r.stderr) else
        assert.equal(2, r.code, r.stderr)
        assert.matches("%-%-delimiter: the delimiter must be ','", r.stderr)
      end
    end
    assert.equal(4, creates())
  end)

  it("a tab-separated file, detected and with --delimiter tab or \\t", function()
    local input = file("tabs.tsv", "item code\tdescription\tnote\nA-1\tsteel nails, 5 cm\ta;b\n")
    for _, extra in ipairs { {}, { "--delimiter", "tab" }, { "--delimiter", "\\t" } } do
      local r = H.run({ "batch", input, "--country", "US", "--format", "jsonl", unpack(extra) }, w.env, w.cache)
      assert.equal(0, r.code, r.stderr)
      assert.matches('"description":"steel nails, 5 cm"', r.stdout)
    end
  end)

  it("--map: an unknown field or a missing column is a usage error naming it, before any request", function()
    local input = file("shopify.csv", SHOPIFY)
    local r = hscode("batch", input, "--country", "US", "--map", "itemCode=Variant SKU,desc=Title")
    assert.equal(2, r.code)
    assert.matches("%-%-map: unknown field 'desc' %(the fields: country, description, itemCode, itemGroup, summary%)",
      r.stderr)
    r = hscode("batch", input, "--country", "US", "--map", "itemCode=Variant SKU,description=Titel")
    assert.equal(2, r.code)
    assert.matches("%-%-map: no column 'Titel' %(for description%); the header has: Handle, Variant SKU, Title",
      r.stderr)
    r = hscode("batch", input, "--country", "US")
    assert.equal(2, r.code)
    assert.matches("no 'itemCode' column .*; name it with %-%-map itemCode=COLUMN", r.stderr)
    assert.falsy(r.stderr:find("traceback", 1, true))
    assert.equal(0, creates())
    assert.equal(0, H.route(w.e, "token"))
  end)

  it("--map: a column name with ',' or '=' escaped with \\", function()
    local input = file("odd.csv", 'SKU,"Title, short",a=b\nK-1,ceramic mug,x\n')
    local r = hscode("batch", input, "--country", "US", "--format", "jsonl", "--map",
      "itemCode=SKU,description=Title\\, short,summary=a\\=b")
    assert.equal(0, r.code, r.stderr)
    assert.matches('"description":"ceramic mug"', r.stdout)
  end)

  it("--map on JSON Lines keys", function()
    local input = file("in.jsonl", '{"sku":"J-1","Title":"<i>wool</i> socks"}\n')
    local r = hscode("batch", input, "--country", "US", "--format", "jsonl", "--map", "itemCode=sku,description=Title")
    assert.equal(0, r.code, r.stderr)
    assert.matches('"itemCode":"J%-1","description":"wool socks"', r.stdout)
    r = hscode("batch", input, "--country", "US", "--map", "itemCode=sku,description=Name")
    assert.equal(2, r.code)
    assert.matches("description is empty %(from 'Name', %-%-map%)", r.stderr)
  end)

  it("--keep-html sends descriptions as they are", function()
    local input = file("h.csv", "itemCode,description\nH-1,<b>steel</b> nails\n")
    local r = hscode("batch", input, "--country", "US", "--format", "jsonl", "--keep-html")
    assert.equal(0, r.code, r.stderr)
    assert.matches('"description":"<b>steel</b> nails"', r.stdout)
  end)

  it("too-long descriptions are problems; --truncate cuts them at 255 characters and counts them", function()
    local long = string.rep("é", 250) .. " cotton t-shirt" -- 265 characters, 515 bytes
    local input = file("long.csv", "itemCode,description\nL-1," .. long .. "\nL-2,short one\n")
    local r = hscode("batch", input, "--country", "US,GB", "--format", "jsonl")
    assert.equal(2, r.code)
    assert.matches("line 2: 'description' is longer than 255 characters %(265%)", r.stderr)
    assert.equal(0, creates())
    r = hscode("batch", input, "--country", "US,GB", "--format", "jsonl", "--truncate")
    assert.equal(0, r.code, r.stderr)
    local cut = string.rep("é", 250) .. " cott"
    assert.truthy(r.stdout:find('"description":"' .. cut .. '"', 1, true), r.stdout)
    assert.matches("1 description cut to 255 characters %(%-%-truncate%)", r.stderr)
  end)

  it("--country US,GB: a row without a country is one row per country, one with its own stays one", function()
    local input = file("multi.csv", "itemCode,description,country\nM-1,steel nails,\nM-2,ceramic mug,CA\n"
      .. "M-3,wool socks,\n")
    local out = w.dir .. "/multi.out.csv"
    local r = hscode("batch", input, "--country", "US,GB", "--out", out, "--keep-journal")
    assert.equal(0, r.code, r.stderr)
    local rows = H.read_csv(out)
    local got = {}
    for i, row in ipairs(rows) do got[i] = row.itemCode .. ":" .. row.country .. ":" .. row.status end
    assert.same({ "M-1:US:CLASSIFIED", "M-1:GB:CLASSIFIED", "M-2:CA:CLASSIFIED", "M-3:US:CLASSIFIED",
      "M-3:GB:CLASSIFIED" }, got)
    assert.equal(5, creates())
    -- again: everything from the journal, nothing created twice
    r = hscode("batch", input, "--country", "US,GB", "--out", out)
    assert.equal(0, r.code, r.stderr)
    assert.matches("5 from the journal", r.stderr)
    assert.equal(5, creates())
    r = hscode("batch", input, "--country", "US,UK")
    assert.equal(2, r.code)
    assert.matches("did you mean GB%?", r.stderr)
  end)

  it("--country US,GB interrupted and resumed: the rows are right and nothing is created twice", function()
    local lines = { "itemCode,description" }
    for i = 1, 80 do lines[#lines + 1] = string.format("R-%d,cotton t-shirt %d", i, i) end
    local input, out = file("many.csv", table.concat(lines, "\n") .. "\n"), w.dir .. "/many.out.csv"
    w.e:configure { classification_delay = 0, latency_ms = 20 }
    local job = H.spawn({ "batch", input, "--country", "US,GB", "--out", out, "--concurrency", "4" }, w.env, w.cache)
    H.until_true(function() return creates() >= 20 end)
    H.signal(job, "INT")
    local first = H.finish(job)
    assert.equal(130, first.code, first.stderr)
    assert.is_true(creates() < 160)
    local r = hscode("batch", input, "--country", "US,GB", "--out", out, "--concurrency", "8")
    assert.equal(0, r.code, r.stderr)
    local rows = H.read_csv(out)
    assert.equal(160, #rows)
    for i = 1, 80 do
      assert.equal("R-" .. i .. ":US", rows[2 * i - 1].itemCode .. ":" .. rows[2 * i - 1].country)
      assert.equal("R-" .. i .. ":GB", rows[2 * i].itemCode .. ":" .. rows[2 * i].country)
      assert.equal("CLASSIFIED", rows[2 * i].status)
    end
    assert.equal(160, creates())
    assert.truthy(slurp(out))
  end)
end)

describe("hscode items classify with real exports", function()
  local w = H.world()
  local function hscode(...)
    return H.run({ ... }, w.env, w.cache)
  end

  it("--map, a detected ';', HTML made plain text; --truncate; errors before any request", function()
    local input = H.write(w.dir .. "/shopify.csv", SHOPIFY)
    local r = hscode("items", "classify", input, "--countries", "US,GB", "--format", "json", "--map",
      "itemCode=Variant SKU,description=Title")
    assert.equal(0, r.code, r.stderr)
    assert.matches('"itemCode":"TS%-1"', r.stdout)
    local client = require("spec.support.items").client(w.e)
    assert.equal("Café mug", assert(client:items { filter = "itemCode eq 'MUG-2'" })[1].description)
    local r2 = hscode("items", "classify", input, "--countries", "US", "--map", "itemCode=Variant SKU,descr=Title")
    assert.equal(2, r2.code)
    assert.matches("%-%-map: unknown field 'descr'", r2.stderr)
    r2 = hscode("items", "classify", input, "--countries", "US", "--delimiter", ",", "--map",
      "itemCode=Variant SKU,description=Title")
    assert.equal(2, r2.code)
    assert.matches("no column 'Title' %(for description%), 'Variant SKU' %(for itemCode%)", r2.stderr)
    local long = H.write(w.dir .. "/long.csv", "itemCode,description\nL-1," .. string.rep("x", 300) .. "\n")
    r2 = hscode("items", "classify", long, "--countries", "US")
    assert.equal(2, r2.code)
    assert.matches("longer than 255 characters", r2.stderr)
    r2 = hscode("items", "classify", long, "--countries", "US", "--truncate", "--format", "json")
    assert.equal(0, r2.code, r2.stderr)
    assert.matches("1 description cut to 255 characters %(%-%-truncate%)", r2.stderr)
  end)

  it("client:classify_catalog(path, countries, {read = {map, ...}}) reads the file so", function()
    local client = require("spec.support.items").client(w.e)
    local input = H.write(w.dir .. "/shopify.csv", SHOPIFY)
    local rows, summary = client:classify_catalog(input, { "US" }, { read = { map = "itemCode=Variant SKU,description=Title" } })
    assert.equal(2, summary.items)
    assert.equal("TS-1", rows[1].itemCode)
    local item = assert(client:items { filter = "itemCode eq 'MUG-2'" })[1]
    assert.equal("Café mug", item.description)
    assert.has_error(function() client:classify_catalog(input, { "US" }) end)
  end)
end)
