-- The CLI's CSV reader and writer, and how it turns files into items.
local cli = require "avalara.cli"
local H = require "spec.support.cli"

local fields = require("spec.support.csv").fields -- without their `line`

describe("cli.csv_parse", function()
  it("reads LF, CRLF and CR line ends, with or without a final one", function()
    for _, text in ipairs { "a,b\nc,d\n", "a,b\r\nc,d\r\n", "a,b\rc,d", "a,b\nc,d" } do
      assert.same({ { "a", "b" }, { "c", "d" } }, fields(assert(cli.csv_parse(text))))
    end
  end)

  it("drops a UTF-8 BOM and keeps empty fields", function()
    assert.same({ { "itemCode", "", "x" }, { "", "", "" } },
      fields(assert(cli.csv_parse("\239\187\191itemCode,,x\n,,\n"))))
  end)

  it("reads quoted fields with commas, doubled quotes and line breaks, counting lines", function()
    local records = assert(cli.csv_parse('id,text\r\n1,"a, b"\r\n2,"say ""hi""\r\nsecond line"\r\n3,""\r\n'))
    assert.same({ { "id", "text" }, { "1", "a, b" }, { "2", 'say "hi"\r\nsecond line' }, { "3", "" } },
      fields(records))
    assert.same({ 1, 2, 3, 5 }, { records[1].line, records[2].line, records[3].line, records[4].line })
  end)

  it("keeps a UTF-8 text and a quote inside an unquoted field as they are", function()
    assert.same({ { "Ünïcode – ok", 'a"b' } }, fields(assert(cli.csv_parse('Ünïcode – ok,a"b'))))
  end)

  it("refuses an unclosed quote and text after a closing quote, naming the line", function()
    -- nil, err: kind input, code syntax, row the line
    local function failure(r, err)
      assert.is_nil(r)
      return { err.kind, err.code, err.row, err.message }
    end
    assert.same({ "input", "syntax", 2, "line 2: a quoted field is never closed" },
      failure(cli.csv_parse('a,b\n1,"open\n2,x\n')))
    assert.same({ "input", "syntax", 1, "line 1: unexpected text after a closing quote" },
      failure(cli.csv_parse('"a"b,c\n')))
  end)
end)

describe("cli.csv_format", function()
  it("quotes only what needs it, with CRLF line ends", function()
    assert.equal('plain,"a, b","say ""hi""","two\nlines"," padded ",42,\r\n',
      cli.csv_format { { "plain", "a, b", 'say "hi"', "two\nlines", " padded ", 42, "" } })
  end)

  it("reads back what it writes", function()
    local records = { { "itemCode", "description" }, { "A,1", '"quoted"\r\nnext' }, { "", "Ünïcode" } }
    assert.same(records, fields(assert(cli.csv_parse(cli.csv_format(records)))))
  end)
end)

describe("avalara.cli.input", function()
  local input = require "avalara.cli.input"
  local dir
  setup(function() dir = H.tmpdir() end)
  teardown(function() H.rmdir(dir) end)

  -- Every row of a file: {row, item fields, problem}.
  local function rows(path, country)
    local src = assert(input.open(path))
    local out = {}
    for row, item, problem in src:source(country, error)() do
      out[#out + 1] = { row = row, itemCode = item.itemCode, description = item.description, summary = item.summary,
        countryOfDestination = item.countryOfDestination, where = item.where, problem = problem }
    end
    return out, src
  end

  it("matches column names loosely and fills the country from the row, else the default", function()
    local path = H.write(dir .. "/a.csv", "Item Code,DESCRIPTION,summary,Country Of Destination,extra\n"
      .. "A,shirt,blue,gb,x\nB,tea,,,y\n\n")
    local out, src = rows(path, "US")
    assert.same({
      { row = 1, itemCode = "A", description = "shirt", summary = "blue", countryOfDestination = "GB",
        where = path .. " line 2" },
      { row = 2, itemCode = "B", description = "tea", countryOfDestination = "US", where = path .. " line 3" },
    }, out)
    assert.same({ "Item Code", "DESCRIPTION", "summary", "Country Of Destination", "extra" }, src.columns)
  end)

  it("reads a .json array of objects and JSON Lines the same way", function()
    local path = H.write(dir .. "/a.json", '[{"item_code": 7, "Description": "tea", "country": "ca"}]')
    assert.same({ { row = 1, itemCode = "7", description = "tea", countryOfDestination = "CA",
      where = path .. " item 1" } }, (rows(path)))
    path = H.write(dir .. "/a.jsonl", '{"itemCode": "A", "description": "tea"}\n\n{"itemCode": "B"}\nnot json\n')
    local out = rows(path, "us")
    assert.equal(3, #out)
    assert.same({ "A", "US", path .. " line 1" }, { out[1].itemCode, out[1].countryOfDestination, out[1].where })
    assert.equal("description is empty", out[2].problem)
    assert.matches("^not valid JSON", out[3].problem)
    path = H.write(dir .. "/o.json", '{"itemCode": "A"}')
    assert.has_error(function() rows(path) end, path .. ": expected a JSON array of items")
  end)

  it("names what is wrong with each row: lengths, countries, UTF-8", function()
    local path = H.write(dir .. "/p.csv", "itemCode,description,country\n"
      .. string.rep("x", 256) .. ",tea,US\nB,tea,ZZ\nC,tea,USA\nD,caf\233,US\nE,tea,\n")
    local out = rows(path)
    assert.matches("'itemCode' is longer than 255 characters %(256%)", out[1].problem)
    assert.equal("unknown country code 'ZZ' (ISO 3166 alpha-2, such as US)", out[2].problem)
    assert.equal("bad country code 'USA' (two letters: did you mean US?)", out[3].problem)
    assert.matches("^not valid UTF%-8: is the file Latin%-1", out[4].problem)
    assert.equal("no country (add a country column or use --country)", out[5].problem)
  end)

  it("says what a UTF-16 file is and how to convert it", function()
    local path = H.write(dir .. "/u.csv", "\255\254i\0t\0e\0m\0")
    local src, err = input.open(path)
    assert.is_nil(src)
    assert.matches("is UTF%-16 .*iconv %-f UTF%-16 %-t UTF%-8", err)
    path = H.write(dir .. "/n.csv", "i\0t\0e\0m\0")
    assert.matches("has NUL bytes: it is UTF%-16 without a byte order mark", select(2, input.open(path)))
  end)
end)

describe("avalara.csv spreadsheet text (--excel)", function()
  local csv = require "avalara.csv"
  it("writes code columns as =\"...\" and reads them back as the code; a literal =\"x\" cell keeps its form", function()
    local text = { [1] = true, [3] = true, [4] = true, [5] = true }
    local line = csv.line({ "0101", "=\"x\"", "", 'a"b', 7 }, { text = text })
    assert.equal([["=""0101""","'=""x""",,"a""b","=""7"""]] .. "\r\n", line)
    local back = assert(csv.parse(csv.BOM .. line))[1]
    assert.same({ "0101", "=\"x\"", "", 'a"b', "7" }, { back[1], back[2], back[3], back[4], back[5] })
    -- formulas = true: cells read as they are
    assert.equal('="0101"', assert(csv.parse(line, { formulas = true }))[1][1])
  end)
end)
