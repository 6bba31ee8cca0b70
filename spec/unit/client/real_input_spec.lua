-- Real exports read by the library (issue 23, item 4): CSV delimiters
-- (avalara.csv), column mappings (avalara.hs.columns), HTML made plain text
-- and descriptions cut on a character boundary (avalara.hs.text), and the
-- catalog reader's options (avalara.items.catalog.read).
local csv = require "avalara.csv"
local columns = require "avalara.hs.columns"
local text = require "avalara.hs.text"
local catalog = require "avalara.items.catalog"

local fields = require("spec.support.csv").fields

local function tmpfile(body)
  local path = os.tmpname()
  local f = assert(io.open(path, "wb"))
  f:write(body)
  f:close()
  return path
end

describe("avalara.csv delimiters", function()
  it("detects ',', ';' or tab from the header line, outside quotes; ',' on a tie or none", function()
    assert.equal(";", csv.detect("\239\187\191Variant SKU;Title;Body HTML\r\na,b,c,d,e\r\n"))
    assert.equal("\t", csv.detect("a\tb\tc\n"))
    assert.equal(",", csv.detect('"a;b;c",d\n'))
    assert.equal(";", csv.detect('"a,b,c";d;e\n'))
    assert.equal(",", csv.detect("a,b;c\n"))
    assert.equal(",", csv.detect("itemCode\n1\n"))
    assert.equal(",", csv.detect(""))
  end)

  it("reads ';' and tab files, given or detected ('auto'), with quotes, a BOM and CRLF", function()
    local text_eu = '\239\187\191a;b;c\r\n1;"x; y";"say ""hi"""\r\n2;;"two\r\nlines"\r\n'
    local want = { { "a", "b", "c" }, { "1", "x; y", 'say "hi"' }, { "2", "", "two\r\nlines" } }
    assert.same(want, fields(assert(csv.parse(text_eu, { delimiter = ";" }))))
    assert.same(want, fields(assert(csv.parse(text_eu, { delimiter = "auto" }))))
    assert.same({ { "a", "b,c", "d" }, { "1", "2" } },
      fields(assert(csv.parse("a\tb,c\td\n1\t2\n", { delimiter = "auto" }))))
    -- a ',' file is unchanged by default
    assert.same({ { "a;b", "c" } }, fields(assert(csv.parse("a;b,c\n"))))
  end)

  it("detects across chunks: a header line longer than the first chunk", function()
    local body = string.rep("col;", 50) .. "last\n" .. string.rep("v;", 50) .. "w\n"
    local i = 0
    local next_record = csv.reader(function()
      i = i + 1
      local s = body:sub((i - 1) * 7 + 1, i * 7)
      return s ~= "" and s or nil
    end, { delimiter = "auto" })
    assert.equal(51, #next_record())
    assert.equal("w", next_record()[51])
  end)

  it("names delimiters as a user gives them, and refuses others", function()
    assert.equal(",", csv.delimiter(","))
    assert.equal(";", csv.delimiter(";"))
    for _, name in ipairs { "tab", "TAB", "\\t", "\t" } do assert.equal("\t", csv.delimiter(name)) end
    local d, why = csv.delimiter("|")
    assert.is_nil(d)
    assert.matches("must be ',', ';' or tab", why)
    assert.has_error(function() csv.reader(function() end, { delimiter = "|" }) end)
  end)
end)

describe("avalara.hs.columns", function()
  local FIELDS = { itemcode = "itemCode", description = "description", summary = "summary",
    countryofdestination = "country", country = "country" }

  it("parses FIELD=COLUMN pairs, with \\, \\= and \\\\ in names and spaces around them dropped", function()
    assert.same({ { "itemCode", "Variant SKU" }, { "description", "Title, short" }, { "summary", "a=b\\c" } },
      columns.parse(" itemCode = Variant SKU ,description=Title\\, short,summary=a\\=b\\\\c,"))
    for _, bad in ipairs { "itemCode", "itemCode=a=b", "=x", "itemCode=", "" } do
      local m, why = columns.parse(bad)
      assert.is_nil(m, bad)
      assert.is_string(why)
    end
  end)

  it("checks the fields: unknown ones named with the known ones, one field mapped twice", function()
    assert.same({ itemCode = "SKU", country = "Ship to" }, columns.mapping("item_code=SKU,Country Of Destination="
      .. "Ship to", FIELDS))
    assert.same({ itemCode = "SKU" }, columns.mapping({ itemCode = "SKU" }, FIELDS))
    local m, why = columns.mapping("itemCode=SKU,desc=Title,foo=x", FIELDS)
    assert.is_nil(m)
    assert.equal("unknown fields 'desc', 'foo' (the fields: country, description, itemCode, summary)", why)
    m, why = columns.mapping("itemCode=A,item_code=B", FIELDS)
    assert.is_nil(m)
    assert.matches("itemCode is mapped twice", why)
  end)

  it("indexes a header: mapped columns exactly or by name, the others by name, missing ones all named", function()
    local header = { "Handle", "Variant SKU", "Title", "Description", "country" }
    assert.same({ itemCode = 2, description = 3, country = 5 },
      columns.index(header, { itemCode = "variant-sku", description = "Title" }, FIELDS))
    assert.same({ description = 4, country = 5 }, columns.index(header, nil, FIELDS))
    local index, why = columns.index(header, { itemCode = "SKU", description = "Name" }, FIELDS)
    assert.is_nil(index)
    assert.equal("no column 'Name' (for description), 'SKU' (for itemCode); the header has: Handle, Variant SKU, "
      .. "Title, Description, country", why)
  end)

  it("picks the fields of a JSON object", function()
    assert.same({ itemCode = "J-1", description = "socks", country = "US" },
      columns.pick({ sku = "J-1", Title = "socks", description = "ignored", country = "US" },
        { itemCode = "sku", description = "title" }, FIELDS))
  end)
end)

describe("avalara.hs.text", function()
  it("strips HTML: tags, comments, scripts; block tags leave a space; entities decoded; spaces collapsed", function()
    assert.equal("Men's cotton t-shirt", text.strip_html("<p>Men&#39;s <b>cotton</b>&nbsp;t-shirt</p>"))
    assert.equal("Café & crème é é", text.strip_html("<div>Caf&eacute; &amp; cr&egrave;me</div> &#233; &#xE9;"))
    assert.equal("soft cotton wash cold", text.strip_html("<ul><li>soft cotton</li><li>wash\n\tcold</li></ul>"))
    assert.equal("a b", text.strip_html("a<br>b"))
    assert.equal("ab", text.strip_html("a<span>b</span>"))
    assert.equal("x y", text.strip_html("x<!-- hidden --><SCRIPT>alert(1)</SCRIPT><style>p{}</style> y"))
    assert.equal("<b> stays &bogus;", text.strip_html("&lt;b&gt; stays &bogus;"))
    assert.equal("a b", text.strip_html("a&#0;<i></i>b")) -- a control character is a space
  end)

  it("leaves text that is not HTML as it is", function()
    for _, s in ipairs { "Tom & Jerry <3", "a < b > c", "  two  spaces ", "" } do
      assert.equal(s, text.strip_html(s))
    end
  end)

  it("truncates on a UTF-8 character boundary", function()
    assert.same({ "héllo", true }, { text.truncate("héllo wörld", 5) })
    assert.same({ "abc", false }, { text.truncate("abc", 3) })
    assert.same({ "日本", true }, { text.truncate("日本語", 2) })
    assert.same({ "a😀", true }, { text.truncate("a😀b", 2) })
    local s = string.rep("é", 300)
    local cut = text.truncate(s, 255)
    assert.equal(510, #cut)
    assert.equal(255, text.length(cut))
  end)

  it("cleans an item in place", function()
    local it = { description = "<b>wool</b> socks", summary = "<p></p>" }
    assert.is_false(text.clean(it))
    assert.same({ description = "wool socks" }, it)
    it = { description = "<b>wool</b> socks" }
    assert.is_true(text.clean(it, { keep_html = true, truncate = 5 }))
    assert.same({ description = "<b>wo" }, it)
  end)
end)

describe("avalara.items.catalog.read options", function()
  it("map, a detected ';' delimiter, HTML made plain text", function()
    local path = tmpfile("\239\187\191Variant SKU;Title;Body HTML\r\nTS-1;\"<b>Men's</b> t-shirt\";x\r\n")
    local list, info = assert(catalog.read(path, { map = "itemCode=Variant SKU,description=Title" }))
    assert.equal("TS-1", list[1].itemCode)
    assert.equal("Men's t-shirt", list[1].description)
    assert.same({ truncated = 0 }, info)
    list = assert(catalog.read(path, { map = { itemCode = "Variant SKU", description = "Title" }, keep_html = true }))
    assert.equal("<b>Men's</b> t-shirt", list[1].description)
    local none, err = catalog.read(path, { map = "itemCode=Variant SKU,description=Title", delimiter = "," })
    assert.is_nil(none)
    assert.equal("map", err.code)
    assert.matches("no column 'Title' %(for description%)", err.message)
    none, err = catalog.read(path, { map = "sku=Variant SKU" })
    assert.is_nil(none)
    assert.equal("options", err.code)
    assert.matches("unknown field 'sku'", err.message)
    none, err = catalog.read(path)
    assert.is_nil(none)
    assert.matches("no 'itemCode' column", err.message)
    os.remove(path)
  end)

  it("truncate cuts descriptions at 255 characters and counts them; JSON Lines keys mapped", function()
    local path = tmpfile('{"sku":"L-1","Title":"' .. string.rep("é", 260) .. '"}\n{"sku":"L-2","Title":"ok"}\n')
    local jsonl = path .. ".jsonl"
    os.rename(path, jsonl)
    local list, info = assert(catalog.read(jsonl, { map = "itemCode=sku,description=Title", truncate = true }))
    assert.equal(255, text.length(list[1].description))
    assert.is_true(list[1].truncated)
    assert.equal("ok", list[2].description)
    assert.same({ truncated = 1 }, info)
    list = assert(catalog.read(jsonl, { map = "itemCode=sku,description=Title" }))
    assert.equal(260, text.length(list[1].description))
    os.remove(jsonl)
  end)

  it("runs docs/items.md's 'Catalog files' example on a Shopify-style export", function()
    local readme = require "spec.support.readme"
    local source = readme.block("Catalog files")
    local path = tmpfile("\239\187\191Variant SKU;Title;Body HTML\r\n"
      .. "TS-1;Men's T-shirt;\"<p>100% cotton &amp; soft</p>\"\r\n" -- a ';' in a cell: quoted, as Excel writes it
      .. "MUG-2;" .. ("Mug "):rep(70) .. ";<b>ceramic</b>\r\n")
    local chunk = assert((loadstring or load)(source:gsub('"products_export.csv"', ("%q"):format(path))
      .. "\nreturn items, info", "=docs/items.md"))
    local items, info = chunk()
    os.remove(path)
    assert.equal(2, #items)
    assert.equal("TS-1", items[1].itemCode)
    assert.equal("100% cotton & soft", items[1].summary)
    assert.equal(255, text.length(items[2].description))
    assert.equal(1, info.truncated)
  end)
end)
