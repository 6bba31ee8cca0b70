-- Issue 23, items 11 and 12 through bin/hscode: no empty journal after an
-- input error, JSON output in a stable key order with `/` as it is, JSON
-- Lines rows in the input's column order, and `--env local` with nothing else.
local cjson = require "cjson"
local H = require "spec.support.cli"

describe("hscode's details", function()
  local e, cache, dir, env

  local function hscode(...)
    return H.run({ ... }, env, cache)
  end

  local w = H.world()
  before_each(function() e, cache, dir, env = w.e, w.cache, w.dir, w.env end)

  it("leaves no journal after an input error, and keeps one it did not make", function()
    local sub = dir .. "/journals"
    os.execute("rm -rf " .. sub .. " && mkdir " .. sub)
    local cases = { ["nocol.csv"] = "sku,title\nA,x\n", ["open.csv"] = 'itemCode,description\nA,"unterminated\n',
      ["bad.jsonl"] = '{"itemCode":"A","description":"x"}\n{oops\n' }
    for name, text in pairs(cases) do
      H.write(sub .. "/" .. name, text)
      local r = hscode("batch", sub .. "/" .. name, "--country", "US", "--out", sub .. "/out-" .. name .. ".csv")
      assert.equal(2, r.code, name .. ": " .. r.stderr)
    end
    assert.falsy(H.listing(sub):find("journal", 1, true), H.listing(sub))
    -- a journal of an earlier run stays
    H.write(sub .. "/ok.csv", "itemCode,description\nA,men's cotton t-shirt\n")
    assert.equal(0, hscode("batch", sub .. "/ok.csv", "--country", "US", "--out", sub .. "/o.csv",
      "--journal", sub .. "/kept.journal", "--keep-journal").code)
    H.write(sub .. "/ok.csv", 'itemCode,description\nA,"unterminated\n')
    local before = e:counters().requests
    assert.equal(2, hscode("batch", sub .. "/ok.csv", "--country", "US", "--out", sub .. "/o.csv",
      "--journal", sub .. "/kept.journal").code)
    assert.truthy(H.listing(sub):find("kept.journal", 1, true))
    assert.equal(before, e:counters().requests) -- nothing sent
  end)

  it("prints JSON with a stable key order and / as it is", function()
    local r = hscode("token", "--json")
    assert.equal(0, r.code, r.stderr)
    assert.truthy(r.stdout:find('"token_url":"' .. e.http_url .. '/connect/token"', 1, true), r.stdout)
    assert.falsy(r.stdout:find("\\/", 1, true))
    local keys = {}
    for k in r.stdout:gmatch('"([%w_]+)":') do keys[#keys + 1] = k end
    local sorted = { (table.unpack or unpack)(keys) }
    table.sort(sorted)
    assert.same(sorted, keys)
  end)

  it("writes JSON Lines rows with the input's columns first, in its order", function()
    local input = H.write(dir .. "/cols.csv", "zeta,itemCode,description,alpha\nz,TS-1,men's cotton t-shirt,a/b\n")
    local r = hscode("batch", input, "--country", "US", "--format", "jsonl", "--out", "-")
    assert.equal(0, r.code, r.stderr)
    assert.truthy(r.stdout:find('^{"zeta":"z","itemCode":"TS%-1","description":"men\'s cotton t%-shirt","alpha":"a/b",'
      .. '"country":"US","status":"CLASSIFIED","hsCode":"610910"'), r.stdout)
    assert.equal("610910", cjson.decode(r.stdout).hsCode)
  end)

  it("--env local needs nothing else: the library's demo defaults (the emulator's URL given here)", function()
    local r = H.run({ "--env", "local", "--emulator-url", e.http_url, "classify", "steel nail", "--country", "US" },
      {}, cache)
    assert.equal(0, r.code, r.stderr)
    assert.matches("country +US\n", r.stdout)
  end)
end)
