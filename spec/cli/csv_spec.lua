-- The CLI's CSV reader and writer, and how it turns files into items.
local cli = require "avalara.cli"
local H = require "spec.cli.helper"

-- The fields of parsed records, without their `line`.
local function fields(records)
  local out = {}
  for i, r in ipairs(records) do
    out[i] = {}
    for j, v in ipairs(r) do out[i][j] = v end
  end
  return out
end

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
    assert.same({ nil, "line 2: a quoted field is never closed" },
      { cli.csv_parse('a,b\n1,"open\n2,x\n') })
    assert.same({ nil, "line 1: unexpected text after a closing quote" }, { cli.csv_parse('"a"b,c\n') })
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

describe("cli.read_items", function()
  local dir
  setup(function() dir = H.tmpdir() end)
  teardown(function() H.rmdir(dir) end)

  it("matches column names loosely and fills the country from the row, else the default", function()
    local path = H.write(dir .. "/a.csv", "Item Code,DESCRIPTION,summary,Country Of Destination,extra\n"
      .. "A,shirt,blue,gb,x\nB,tea,,,y\n\n")
    assert.same({
      { itemCode = "A", description = "shirt", summary = "blue", countryOfDestination = "GB", where = path .. " line 2" },
      { itemCode = "B", description = "tea", countryOfDestination = "US", where = path .. " line 3" },
    }, cli.read_items(path, "US"))
  end)

  it("reads a .json array of objects the same way", function()
    local path = H.write(dir .. "/a.json", '[{"item_code": 7, "Description": "tea", "country": "ca"}]')
    assert.same({ { itemCode = "7", description = "tea", countryOfDestination = "CA", where = path .. " item 1" } },
      cli.read_items(path))
    path = H.write(dir .. "/o.json", '{"itemCode": "A"}')
    assert.same({ nil, path .. ": expected a JSON array of items" }, { cli.read_items(path) })
  end)
end)
