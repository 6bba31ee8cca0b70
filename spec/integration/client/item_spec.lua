-- Items are checked against the published 2019 ItemModel before any
-- request, with messages naming the field.
local item = require "avalara.hs.item"
local emu = require "spec.support.emulator"
local H = require "spec.support.client"

describe("avalara.item", function()
  local OK = { itemCode = "TS-1", description = "men's cotton t-shirt" }

  local function with(extra)
    local t = {}
    for k, v in pairs(OK) do t[k] = v end
    for k, v in pairs(extra) do t[k] = v end
    return t
  end

  it("accepts a flat item and a model-shaped one", function()
    assert.is_true(item.check(OK))
    assert.is_true(item.check({ countryOfDestination = "US", item = OK }))
    assert.is_true(item.check(with { itemGroup = "Clothing > Men", summary = "long",
      parameters = { { name = "weight", value = "0.2", unit = "kg" } },
      classificationParameters = { { name = "price", value = 9.99, unit = "USD" }, { name = "url", value = "http://x" } } }))
  end)

  it("names the field that is wrong", function()
    local cases = {
      { { description = "x" }, "'itemCode' is required" },
      { { itemCode = "A" }, "'description' is required" },
      { with { itemCode = 5 }, "'itemCode' must be a string (got number)" },
      { with { itemCode = string.rep("x", 256) }, "'itemCode' is longer than 255 characters (256)" },
      { with { description = string.rep("é", 256) }, "'description' is longer than 255 characters (256)" },
      { with { itemGroup = string.rep("g", 2001) }, "'itemGroup' is longer than 2000 characters" },
      { with { summary = {} }, "'summary' must be a string" },
      { with { parameters = { { name = "colour", value = "red" } } }, "'parameters[1].name' must be one of coo," },
      { with { parameters = { { name = "price", value = "1" } } }, "'parameters[1].unit' is required" },
      { with { parameters = { { name = "price", value = "1", unit = "EUR" } } }, "'parameters[1].unit' must be USD" },
      { with { classificationParameters = { { name = "url" } } }, "'classificationParameters[1].value' is required" },
      { with { parameters = { name = "url", value = "x" } }, "'parameters' must be a list" },
      { with { parameters = { { name = "url", value = string.rep("v", 256) } } }, "'parameters[1].value' is longer" },
      { with { countryOfDestination = "USA" }, "'countryOfDestination' must be two letters" },
      { "shirt", "an item must be a table" },
    }
    for _, case in ipairs(cases) do
      local ok, why = item.check(case[1])
      assert.is_nil(ok)
      assert.equal("input", why.kind)
      assert.truthy(why.message:find(case[2], 1, true), why.message)
    end
    local _, why = item.check(with { description = "" })
    assert.same({ "input", "description", false }, { why.kind, why.field, why.retryable })
  end)

  it("builds the published body: companyId from the client, itemGroup defaulted, nothing else", function()
    assert.same({ countryOfDestination = "GB", item = { companyId = 7, itemCode = "TS-1",
      description = "men's cotton t-shirt", itemGroup = item.DEFAULT_GROUP } },
      item.body(with { brand = "x", where = "file line 2", country = "gb" }, { company_id = 7 }))
    assert.equal("Clothing", item.body(OK, { company_id = 7, country = "US", item_group = "Clothing" }).item.itemGroup)
    assert.equal("Own", item.body(with { itemGroup = "Own" }, { company_id = 7, country = "US",
      item_group = "Clothing" }).item.itemGroup)
    -- the caller's default group is checked like the item's own, once the item is known to be valid
    assert.has_error(function() item.body(OK, { company_id = 7, country = "US", item_group = "", where = "g" }) end,
      "g: 'itemGroup' is required")
    assert.has_error(function() item.body(with { description = "" }, { company_id = 7, country = "US",
      item_group = "", where = "g" }) end, "g: 'description' is required")
    assert.has_error(function() item.body(OK, { company_id = 7, where = "here" }) end,
      "here: a country is required (countryOfDestination or opts.country)")
    assert.has_error(function() item.body(with { companyId = 8 }, { company_id = 7, country = "US", where = "w" }) end,
      "w: 'companyId' 8 is not the client's company 7")
  end)
end)

describe("client item checks", function()
  local e
  setup(function() e = emu.start() end)
  teardown(function() e:stop() end)

  it("raise in classify and classify_batch before any request", function()
    e:reset()
    local c = H.client(e)
    local ok, err = pcall(c.classify, c, { itemCode = "A", description = string.rep("d", 300) }, { country = "US" })
    assert.is_false(ok)
    assert.truthy(err:find("client:classify: 'description' is longer than 255 characters", 1, true), err)
    ok, err = pcall(c.classify_batch, c, { { itemCode = "A", description = "mug" }, { itemCode = "B" } },
      { country = "US" })
    assert.is_false(ok)
    assert.truthy(err:find("client:classify_batch: items[2]: 'description' is required", 1, true), err)
    ok, err = pcall(c.classify, c, { itemCode = "A", description = "mug" }, { country = "USA" })
    assert.is_false(ok)
    assert.truthy(err:find("two letters", 1, true), err)
    -- a batch's later item with another country is checked too (the last country checked is not
    -- taken for the next one's), and named by its index
    ok, err = pcall(c.classify_batch, c, { { itemCode = "A", description = "mug" },
      { itemCode = "B", description = "cup", countryOfDestination = "UK" } }, { country = "US" })
    assert.is_false(ok)
    assert.truthy(err:find("client:classify_batch: items[2]: 'countryOfDestination': unknown country code 'UK'", 1, true),
      err)
    ok, err = pcall(c.classify_batch, c, { { itemCode = "A", description = "mug" } }, { country = "USA" })
    assert.is_false(ok)
    assert.truthy(err:find("client:classify_batch: items[1]: the country must be two letters", 1, true), err)
    assert.equal(0, e:counters().requests)
  end)
end)
