-- classify, classification, wait, classify_batch (definitions: definitions_spec.lua).
local core = require "avalara.core"
local paths = require "avalara.paths"
local emu = require "spec.support.emulator"
local H = require "spec.support.client"

local items = H.items

describe("client classification", function()
  local e
  setup(function() e = emu.start() end)
  teardown(function() e:stop() end)
  before_each(function() e:reset() end)

  it("classify + classification + wait #smoke", function()
    local c = H.client(e)
    local m = assert(c:classify { itemCode = "TS-1", description = "men's cotton t-shirt", countryOfDestination = "us" })
    assert.equal("PENDING", m.status)
    assert.equal("1001-TS-1-US", m.id)
    assert.equal("US", m.countryOfDestination)
    assert.equal("TS-1", m.item.itemCode)
    assert.equal(1001, m.item.companyId)
    assert.equal("General merchandise", m.item.itemGroup)
    local again = assert(c:classification(m.id))
    assert.equal(m.id, again.id)
    local done = assert(c:wait(m, { timeout = 10, interval = 0.1 }))
    assert.equal("CLASSIFIED", done.status)
    assert.equal("610910", done.hsCode)
    assert.is_nil(done.hsCodeDescription)
    -- by id; a finished model returns at once
    assert.equal("CLASSIFIED", assert(c:wait(m.id)).status)
    local n = H.route(e, "classification_get")
    assert.equal(done, c:wait(done))
    assert.equal(n, H.route(e, "classification_get"))
  end)

  it("takes the country and item group from opts and sends the published fields only", function()
    local c = H.client(e)
    local sent
    local c2 = H.client(e, { transport = H.socket_transport(function(req)
      if req.method == "POST" and req.url:find("/classifications/hs", 1, true) then sent = req end
    end) })
    local m = assert(c:classify({ itemCode = "X", description = "wool sweater", summary = "knitted", brand = "B",
      parameters = { { name = "price", value = 12.5, unit = "USD" }, { name = "material", value = "wool" } } },
      { country = "DE", item_group = "Clothing > Women" }))
    assert.equal("DE", m.countryOfDestination)
    assert.is_nil(m.item.brand)
    assert.equal("knitted", m.item.summary)
    assert.equal("Clothing > Women", m.item.itemGroup)
    assert.same({ { name = "price", value = "12.5", unit = "USD" }, { name = "material", value = "wool" } },
      m.item.parameters)
    -- what goes on the wire: the 2019 model, companyId from the client
    assert(c2:classify({ itemCode = "Y", description = "mug", itemGroup = "Kitchen", id = 5, status = "X" },
      { country = "us" }))
    local cjson = require "cjson"
    assert.same({ countryOfDestination = "US", item = { companyId = 1001, itemCode = "Y", description = "mug",
      itemGroup = "Kitchen" } }, cjson.decode(sent.body))
  end)

  it("creating the same item twice gives one id; the second create replaces the first", function()
    e:configure { classification_delay = 0 }
    local c = H.client(e)
    local a = assert(c:wait(assert(c:classify({ itemCode = "SAME/1", description = "qwzx blorf" },
      { country = "US" }))))
    assert.equal("CANNOT_BE_CLASSIFIED", a.status)
    local b = assert(c:classify({ itemCode = "SAME/1", description = "men's cotton t-shirt" }, { country = "US" }))
    assert.equal("1001-SAME/1-US", a.id)
    assert.equal(a.id, b.id)
    local done = assert(c:wait(b.id))
    assert.equal("610910", done.hsCode)
    assert.equal("men's cotton t-shirt", done.item.description)
    assert.equal(2, H.route(e, "classification_create"))
  end)

  it("wait times out with kind timeout", function()
    e:configure { classification_delay = 30 }
    local c = H.client(e)
    local m = assert(c:classify({ itemCode = "A", description = "wool sweater" }, { country = "US" }))
    local r, err = c:wait(m.id, { timeout = 0.3, interval = 0.05 })
    assert.is_nil(r)
    assert.equal("timeout", err.kind)
    assert.is_true(core.is_error(err))
    assert.truthy(tostring(err):find(m.id, 1, true))
  end)

  it("CANNOT_BE_CLASSIFIED is a result, not an error", function()
    e:configure { classification_delay = 0 }
    local c = H.client(e)
    local m = assert(c:wait(assert(c:classify({ itemCode = "Q", description = "qwzx blorf" }, { country = "US" }))))
    assert.equal("CANNOT_BE_CLASSIFIED", m.status)
    assert.is_string(m.resolution)
  end)

  it("classify_batch of 200 with injected failures keeps every successful item, aligned", function()
    e:configure { classification_delay = 0.1 }
    local c = H.client(e, { retries = false })
    assert(c:token())
    e:fault("classification_create", "500", 7)
    local list = items(200)
    list[50].countryOfDestination = "ZZ" -- a validation failure too (two letters, but no country)
    local progress, indexes = {}, {}
    local results, summary = c:classify_batch(list, { concurrency = 16, on_progress = function(done, total, i, r)
      progress[#progress + 1] = done
      assert.equal(200, total)
      assert.is_nil(indexes[i])
      indexes[i] = r
    end })
    assert.equal(200, #results)
    assert.equal(8, summary.failed)
    assert.equal(192, summary.ok)
    local failed500 = 0
    for i = 1, 200 do
      local r = results[i]
      assert.equal(r, indexes[i])
      if core.is_error(r) then
        if i == 50 then
          assert.equal(422, r.status)
        else
          assert.equal(500, r.status)
          failed500 = failed500 + 1
        end
      else
        assert.equal("SKU-" .. i, r.item.itemCode)
        assert.equal("CLASSIFIED", r.status)
      end
    end
    assert.equal(7, failed500)
    assert.equal(200, #progress)
    for i = 1, 200 do assert.equal(i, progress[i]) end
    assert.equal(200, H.route(e, "classification_create"))
    assert.equal(1, H.grants(e))
  end)

  it("classify_batch retries the failed items when retries are on: all 200 succeed", function()
    e:configure { classification_delay = 0.1 }
    local c = H.client(e)
    e:fault("classification_create", "503", 10, { retry_after = 0 })
    local results, summary = c:classify_batch(items(200), { concurrency = 16 })
    assert.equal(0, summary.failed)
    for i = 1, 200 do assert.equal("SKU-" .. i, results[i].item.itemCode) end
    assert.equal(210, H.route(e, "classification_create"))
  end)

  it("classify_batch with wait = false returns the PENDING models; poll faults recover", function()
    local c = H.client(e)
    local results = c:classify_batch(items(5), { wait = false })
    for i = 1, 5 do assert.equal("PENDING", results[i].status) end
    e:configure { classification_delay = 0 }
    e:fault("classification_get", "502", 2)
    local r2 = c:classify_batch(items(5), { interval = 0.01 })
    for i = 1, 5 do assert.equal("CLASSIFIED", r2[i].status) end
  end)

  it("classify_batch renews the token once on 401", function()
    e:configure { classification_delay = 0 }
    local c = H.client(e)
    assert(c:token())
    assert(e:request("POST", "/_emulator/tokens/expire"))
    local results, summary = c:classify_batch(items(20), { interval = 0.01 })
    assert.equal(0, summary.failed)
    assert.equal(20, #results)
    assert.equal(2, H.grants(e))
  end)

  it("classify_batch when no token can be had: every item gets the error", function()
    local c = H.client(e, { license_key = "WRONG" })
    local n = 0
    local results, summary = c:classify_batch(items(3), { on_progress = function() n = n + 1 end })
    assert.equal(3, summary.not_attempted)
    assert.equal("auth", summary.stopped)
    assert.equal(3, n)
    for i = 1, 3 do assert.equal("invalid_client", results[i].code) end
    assert.equal(0, H.route(e, "classification_create"))
  end)

  it("classify_batch of nothing", function()
    local c = H.client(e)
    local results, summary = c:classify_batch({})
    assert.same({}, results)
    assert.equal(0, summary.total)
  end)

  it("paths: one table, values encoded", function()
    assert.equal("/api/v2/companies/7/classifications/hs/a%20b", paths.build("classification_get",
      { companyId = 7, id = "a b" }))
    assert.equal("/api/v2/companies/7/classifications/hs/7-A%2FB%3F%25-US", paths.build("classification_get",
      { companyId = 7, id = "7-A/B?%-US" }))
    assert.has_error(function() paths.build("nope", {}) end)
    assert.has_error(function() paths.build("classification_get", { companyId = 1 }) end)
  end)
end)
