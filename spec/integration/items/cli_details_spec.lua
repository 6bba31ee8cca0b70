-- Issue 23, items 11 and 12 in the Items flow: `items classify` reads JSON
-- Lines as `batch` does; the progress after a stop tells how many items are
-- decided (not `wait 200/200` with all pending); "1 code verified"; JSON
-- output in a stable key order with `/` as it is; codes with dots in
-- `client:verify_hscodes`.
local H = require "spec.support.items"
local CLI = require "spec.support.cli"
local cjson = require "cjson"

describe("the Items flow's details", function()
  local e, cache, dir, env

  local w = CLI.world()
  before_each(function()
    e, cache, dir, env = w.e, w.cache, w.dir, w.env
    e:configure { classification_delay = 0.2 }
  end)

  local function hscode(args)
    return CLI.run(args, env, cache)
  end

  it("items classify reads a .jsonl catalog, one object a line, and names a bad line", function()
    local file = CLI.write(dir .. "/catalog.jsonl", '{"itemCode":"TS-1","description":"men\'s cotton t-shirt"}\n'
      .. "\n" .. '{"itemCode":"MUG/2","description":"porcelain coffee mug","itemGroup":"Kitchen / Mugs"}\n')
    local r = hscode { "items", "classify", file, "--countries", "US", "--format", "json" }
    assert.equal(0, r.code, r.stderr)
    local rows = cjson.decode(r.stdout)
    assert.same({ "TS-1", "MUG/2" }, { rows[1].itemCode, rows[2].itemCode })
    -- JSON: `/` as it is, and the keys in the columns' order
    assert.truthy(r.stdout:find('"itemCode":"MUG/2"', 1, true), r.stdout)
    assert.truthy(r.stdout:find('^%[\n  {"itemCode":"TS%-1","itemId":%d+,"country":"US","status":"Classified"'),
      r.stdout)
    local bad = CLI.write(dir .. "/bad.jsonl", '{"itemCode":"A","description":"a"}\n{"itemCode": oops}\n')
    r = hscode { "items", "classify", bad, "--countries", "US" }
    assert.equal(2, r.code)
    assert.truthy(r.stderr:find("bad.jsonl line 2: not valid JSON", 1, true), r.stderr)
  end)

  it("says how many items are decided when a wait is stopped, not that all are", function()
    e:configure { classification_delay = 5 }
    local c = H.client(e)
    local seen, waiting = {}, false
    local rows, summary = c:classify_catalog({ { itemCode = "A-1", description = "men's cotton t-shirt" },
      { itemCode = "A-2", description = "porcelain coffee mug" } }, { "US" }, {
      on_progress = function(p)
        if p.phase == "wait" then
          seen[#seen + 1] = p
          waiting = true
        end
      end,
      should_stop = function() return waiting end })
    assert.truthy(rows, tostring(summary))
    local last = seen[#seen]
    assert.same({ 0, 2, true }, { last.done, last.total, last.ended })
    assert.equal(2, summary.pending)
  end)

  it("verify: '1 code verified', codes with dots in the library too", function()
    local c = H.client(e)
    local made = assert(c:create_items { { itemCode = "TS-1", description = "t-shirt" } })
    local r = hscode { "items", "verify", "TS-1:US:6109.10" }
    assert.equal(0, r.code, r.stderr)
    assert.equal("1 code verified and kept\n", r.stdout)
    local out = assert(c:verify_hscodes { { itemId = made[1].id, country = "US", hsCode = "6109.10" } })
    assert.same({}, out.failed)
  end)
end)
