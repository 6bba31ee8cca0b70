-- Every country list of every hscode command is checked before any request
-- (avalara.country), with the code meant for a common mistake (issue 23, item 3).
local H = require "spec.support.cli"

describe("hscode country codes", function()
  local w = H.world()

  local function hscode(...)
    return H.run({ ... }, w.env, w.cache)
  end

  -- refused with exit 2, the message on stderr, nothing sent to the emulator
  local function refused(r, message)
    assert.equal(2, r.code, r.stderr)
    assert.truthy(r.stderr:find(message, 1, true), r.stderr)
    assert.equal("", r.stdout)
    assert.not_matches("traceback", r.stderr)
    assert.equal(0, w.e:counters().requests or 0)
  end

  local UK = "unknown country code 'UK' (did you mean GB?)"

  it("classify --country", function()
    refused(hscode("classify", "steel nail", "--country", "uk"), UK)
    refused(hscode("classify", "steel nail", "--country", "EL"), "unknown country code 'EL' (did you mean GR?)")
    refused(hscode("classify", "steel nail", "--country", "USA"), "bad country code 'USA' (two letters: did you mean US?)")
    refused(hscode("classify", "steel nail", "--country", "QQ"), "unknown country code 'QQ'")
  end)

  it("lookup --country", function()
    refused(hscode("lookup", "6109.10", "--country", "UK"), UK)
  end)

  it("batch --country and the country column (every bad row named, by line)", function()
    local file = H.write(w.dir .. "/countries.csv", "itemCode,description,country\nA,mug,US\nB,t-shirt,UK\nC,nail,\n")
    refused(hscode("batch", file, "--country", "UK"), UK)
    local r = hscode("batch", file, "--country", "US", "--journal", w.dir .. "/j1")
    refused(r, "line 3: " .. UK)
  end)

  it("items classify --countries, items list --countries, items verify rows", function()
    local file = H.write(w.dir .. "/catalog.csv", "itemCode,description\nA,mug\nB,t-shirt\n")
    refused(hscode("items", "classify", file, "--countries", "US,UK"), UK)
    refused(hscode("items", "classify", file, "--countries", "US ja"), "unknown country code 'JA' (did you mean JP?)")
    refused(hscode("items", "list", "--countries", "DE,uk"), UK)
    refused(hscode("items", "verify", "A:UK:610910"), "A:UK:610910: " .. UK)
    local rows = H.write(w.dir .. "/verify.csv", "itemCode,country,hsCode\nA,EL,610910\n")
    refused(hscode("items", "verify", rows), "unknown country code 'EL' (did you mean GR?)")
  end)

  it("takes the codes meant, in any case", function()
    local r = hscode("classify", "men's cotton t-shirt", "--country", "gb")
    assert.equal(0, r.code, r.stderr)
    assert.matches("country +GB\n", r.stdout)
  end)
end)
