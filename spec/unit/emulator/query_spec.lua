-- The emulator's list queries ($filter, $orderBy, $top, $skip) and its
-- country table. Pure Lua, so they run under busted without nginx.
package.path = "emulator/lua/?.lua;" .. package.path

describe("emulator.query", function()
  local query = require "emulator.query"
  local FIELDS = { id = "number", hsCode = "string", description = "string" }
  local NOT = { "system", "effDate" }
  local RECORDS = {
    { id = 3, hsCode = "8413", description = "Pumps for liquids" },
    { id = 1, hsCode = "8414", description = "Air or vacuum PUMPS; compressors" },
    { id = 2, hsCode = "8415", description = "Air conditioning machines" },
    { id = 4, hsCode = "8501", description = "Electric motors" },
  }

  local function run(args)
    local q = assert(query.parse(args, FIELDS, NOT))
    local page, count = query.run(q, RECORDS)
    local codes = {}
    for i, r in ipairs(page) do codes[i] = r.hsCode end
    return codes, count
  end

  local function fails(args, code)
    local q, err = query.parse(args, FIELDS, NOT)
    assert.is_nil(q)
    assert.equals(code, err.code)
    return err
  end

  it("defaults to everything, 1000 at most per page", function()
    assert.same({ { "8413", "8414", "8415", "8501" }, 4 }, { run({}) })
    local q = query.parse({}, FIELDS)
    assert.equals(1000, q.top)
    assert.equals(1000, query.parse({ ["$top"] = "5000" }, FIELDS).top)
    assert.equals(1000, query.parse({ ["$top"] = "0" }, FIELDS).top)
  end)

  it("pages with $top and $skip; the count is before paging", function()
    assert.same({ { "8414", "8415" }, 4 }, { run({ ["$top"] = "2", ["$skip"] = "1" }) })
    assert.same({ {}, 4 }, { run({ ["$skip"] = "9" }) })
  end)

  it("takes the keys in any case ($orderby as the docs write it)", function()
    assert.same({ "8501", "8415", "8414", "8413" }, (run({ ["$ORDERBY"] = "hsCode desc" })))
  end)

  it("filters with eq, startswith, contains (case-insensitive), and, or, not, parentheses", function()
    assert.same({ "8414" }, (run({ ["$filter"] = "hsCode eq '8414'" })))
    assert.same({ "8414" }, (run({ ["$filter"] = "hsCode = 8414" })))
    assert.same({ "8413", "8414", "8415" }, (run({ ["$filter"] = "hsCode startswith '841'" })))
    assert.same({ "8413", "8414" }, (run({ ["$filter"] = "description contains 'pumps'" })))
    assert.same({ "8414" }, (run({ ["$filter"] = "description contains 'pumps' and hsCode ne '8413'" })))
    assert.same({ "8413", "8501" },
      (run({ ["$filter"] = "(hsCode eq '8413' or hsCode endswith '01') and not description contains 'air'" })))
    assert.same({ "8415", "8501" }, (run({ ["$filter"] = "id in (2, 4)" })))
    assert.same({ "8413", "8415" }, (run({ ["$filter"] = "id between 2 and 4" })))
    assert.same({ "8501" }, (run({ ["$filter"] = "id > 3" })))
    assert.same({}, (run({ ["$filter"] = "description is null" })))
    -- a quote inside a value is doubled, or the other quote style is used
    local q = assert(query.parse({ ["$filter"] = [[description eq 'Bob''s' or description eq "say ""hi"""]] }, FIELDS))
    local page = query.run(q, { { description = "Bob's" }, { description = 'say "hi"' }, { description = "Bob" } })
    assert.same({ { description = "Bob's" }, { description = 'say "hi"' } }, page)
  end)

  it("orders by several fields, stable", function()
    assert.same({ "8414", "8415", "8413", "8501" }, (run({ ["$orderBy"] = "id" })))
    assert.same({ "8501", "8413", "8415", "8414" }, (run({ ["$orderBy"] = "id DESC, hsCode" })))
  end)

  it("answers a malformed filter with MalformedFilterException", function()
    for _, f in ipairs({ "hsCode eq", "hsCode eq '8414", "(hsCode eq '1'", "hsCode like '8'", "hsCode eq '1' and",
      "eq '1'", "hsCode eq '1' x" }) do
      local err = fails({ ["$filter"] = f }, "MalformedFilterException")
      assert.is_string(err.args[1], f)
    end
  end)

  it("answers unknown, not filterable and mistyped fields", function()
    assert.same({ "nope" }, fails({ ["$filter"] = "nope eq 1" }, "InvalidQueryField").args)
    fails({ ["$filter"] = "system eq 'x'" }, "FieldNotQueryableError")
    fails({ ["$filter"] = "id eq 'abc'" }, "InvalidQueryValue")
    fails({ ["$orderBy"] = "nope" }, "InvalidQueryField")
    fails({ ["$orderBy"] = "hsCode upwards" }, "InvalidQueryField")
    fails({ ["$orderBy"] = "effDate" }, "FieldNotOrderableError")
    for _, v in ipairs({ "-1", "abc", "1.5" }) do
      fails({ ["$top"] = v }, "QueryParameterOutOfRange")
      fails({ ["$skip"] = v }, "QueryParameterOutOfRange")
    end
  end)
end)

describe("emulator.countries", function()
  local countries = require "emulator.countries"
  setup(function() countries.load() end)

  it("finds a country by alpha-2, alpha-3 or name, in any case", function()
    assert.same({ code = "ES", name = "Spain", numeric = 724 }, countries.find("es"))
    assert.equals("ES", countries.find("ESP").code)
    assert.equals("ES", countries.find("spain").code)
    assert.is_nil(countries.find("XX"))
    assert.is_nil(countries.find("UK"))
    assert.is_nil(countries.find(nil))
  end)

  it("gives the published system names, and one system per other country", function()
    assert.equals("Harmonized Tariff Schedule A of the United States", countries.system("US").name)
    assert.equals("Integrated Tariff of the European Union", countries.system("ES").name)
    assert.same(countries.system("ES"), countries.system("DE"))
    local ca = countries.system("CA")
    assert.equals("Customs Tariff of Canada", ca.name)
    assert.not_equal(ca.block, countries.system("MX").block)
  end)
end)
