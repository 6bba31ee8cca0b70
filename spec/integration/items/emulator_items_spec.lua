-- The emulator's item routes over HTTP (docs/api-contracts.md sections 2.3 to 2.5):
-- create, read, list (paging, filters, $include), update, delete; the scope
-- and company checks; route precedence; faults and counters.
local H = require "spec.support.items"

describe("emulator: items", function()
  local S = H.emulator()
  local api = S.api
  setup(S.start)
  teardown(S.stop)
  before_each(S.reset)

  describe("create", function()
    it("takes the published minimal item and gives it an id", function()
      local res = api("POST", H.ITEMS, { body = '[{"id":0,"itemCode":"CERMUG","description":"Ceramic Mug"}]',
        headers = { ["content-type"] = "application/json" } })
      assert.equal(200, res.status)
      local m = res.json[1]
      assert.equal("CERMUG", m.itemCode)
      assert.equal("Ceramic Mug", m.description)
      assert.equal(1001, m.companyId)
      assert.is_true(m.id > 0 and m.id == math.floor(m.id))
      assert.truthy(m.createdDate:match("^%d%d%d%d%-%d%d%-%d%dT"))
      local again = api("GET", H.ITEMS .. "/" .. H.id(m.id))
      assert.equal(200, again.status)
      assert.same(m, again.json)
    end)

    it("keeps the published fields and drops others; parameters and classifications come with $include", function()
      local m = S.create({ { itemCode = "TS-1", description = "men's cotton t-shirt", itemGroup = "Clothing",
        category = "Clothing > Men", taxCode = "P0000000", brand = "X",
        parameters = { { name = "material", value = "cotton" } },
        classifications = { { productCode = "6109100012", systemCode = "HTS", country = "us" } } } })[1]
      assert.is_nil(m.brand)
      assert.equal("Clothing > Men", m.category)
      assert.is_nil(m.parameters)
      local full = api("GET", H.ITEMS .. "/" .. H.id(m.id) .. "?$include=Parameters,Classifications").json
      assert.same({ { name = "material", value = "cotton" } }, full.parameters)
      assert.equal("6109100012", full.classifications[1].productCode)
      assert.equal("US", full.classifications[1].country)
      local empty = api("GET", H.ITEMS .. "/" .. H.id(S.create({ { itemCode = "B", description = "b" } })[1].id)
        .. "?%24include=classifications,HsCodeClassificationStatus")
      assert.truthy(empty.body:find('"classifications":[]', 1, true), empty.body)
      assert.truthy(empty.body:find('"hsCodeClassificationStatus":[]', 1, true), empty.body)
    end)

    it("checks every item first; one bad item creates nothing", function()
      local res = api("POST", H.ITEMS, { json = { { id = 0, itemCode = "A", description = "a" },
        { id = 0, itemCode = ("x"):rep(51) }, { id = 0, description = "no code" } } })
      assert.equal(400, res.status)
      assert.equal("ValidationException", res.json.error.code)
      local refers = {}
      for _, d in ipairs(res.json.error.details) do refers[#refers + 1] = d.refersTo .. "=" .. d.code end
      assert.same({ "[1].itemCode=MaxStringLengthError", "[1].description=ValueRequiredError",
        "[2].itemCode=ValueRequiredError" }, refers)
      assert.equal(0, api("GET", H.ITEMS).json["@recordsetCount"])
      local one = api("POST", H.ITEMS, { json = { { id = 0, itemCode = "A" } } })
      assert.equal(400, one.status)
      assert.equal("ValueRequiredError", one.json.error.code)
      assert.equal(5, one.json.error.details[1].number)
    end)

    it("refuses item codes the company has, or that come twice, as DuplicateEntry", function()
      S.create({ { itemCode = "A", description = "a" } })
      local res = api("POST", H.ITEMS, { json = { { id = 0, itemCode = "B", description = "b" },
        { id = 0, itemCode = "A", description = "a" } } })
      assert.equal(400, res.status)
      assert.equal("DuplicateEntry", res.json.error.code)
      assert.equal(193, res.json.error.details[1].number)
      assert.equal("[1].itemCode", res.json.error.details[1].refersTo)
      local twice = api("POST", H.ITEMS, { json = { { id = 0, itemCode = "C", description = "c" },
        { id = 0, itemCode = "C", description = "c" } } })
      assert.equal("DuplicateEntry", twice.json.error.code)
      assert.equal(1, api("GET", H.ITEMS).json["@recordsetCount"])
    end)

    it("takes at most 500 items a request", function()
      local body = {}
      for i = 1, 501 do body[i] = { id = 0, itemCode = "I" .. i, description = "d" } end
      local res = api("POST", H.ITEMS, { json = body })
      assert.equal(400, res.status)
      assert.equal("EntityLimitExceeded", res.json.error.code)
      assert.equal(10, res.json.error.details[1].number)
      body[501] = nil
      assert.equal(500, #api("POST", H.ITEMS, { json = body }).json)
    end)

    it("answers a body that is not an array, not JSON, or not application/json", function()
      local res = api("POST", H.ITEMS, { json = { itemCode = "A", description = "a" } })
      assert.equal(400, res.status)
      assert.equal("ModelRequiredException", res.json.error.code)
      res = api("POST", H.ITEMS, { body = "[{", headers = { ["content-type"] = "application/json" } })
      assert.equal(400, res.status)
      assert.equal("JsonFormatError", res.json.error.code)
      res = api("POST", H.ITEMS, { body = "x", headers = { ["content-type"] = "text/plain" } })
      assert.equal(415, res.status)
      assert.equal(4016, res.json.error.details[1].number)
    end)
  end)

  describe("list", function()
    before_each(function()
      local list = {}
      for i = 1, 25 do
        list[i] = { itemCode = string.format("SKU-%02d", i), description = i % 2 == 0 and "wool sweater" or "mug" }
      end
      S.create(list)
    end)

    it("pages with $top, and @nextLink carries the query on", function()
      local res = api("GET", H.ITEMS .. "?$top=10&$filter=" .. H.emu.percent_encode("description eq 'mug'"))
      assert.equal(200, res.status)
      assert.equal(13, res.json["@recordsetCount"])
      assert.equal(10, #res.json.value)
      local link = res.json["@nextLink"]
      assert.equal("/api/v2/companies/1001/items?%24skip=10&%24top=10&%24filter=description%20eq%20%27mug%27", link)
      local page2 = api("GET", link)
      assert.equal(3, #page2.json.value)
      assert.equal("SKU-21", page2.json.value[1].itemCode)
      local past = api("GET", page2.json["@nextLink"])
      assert.same({}, past.json.value)
      assert.equal(page2.json["@nextLink"], past.json["@nextLink"])
    end)

    it("orders, filters by item code, and refuses the fields the route does not filter", function()
      local res = api("GET", H.ITEMS .. "?$orderBy=id%20desc&$top=2")
      assert.equal("SKU-25", res.json.value[1].itemCode)
      res = api("GET", H.ITEMS .. "?$filter=" .. H.emu.percent_encode("itemCode in ('SKU-03', 'sku-04')"))
      assert.equal(2, res.json["@recordsetCount"])
      res = api("GET", H.ITEMS .. "?$filter=" .. H.emu.percent_encode("summary eq 'x'"))
      assert.equal(400, res.status)
      assert.equal("FieldNotQueryableError", res.json.error.code)
      res = api("GET", H.ITEMS .. "?$filter=" .. H.emu.percent_encode("itemCode eq"))
      assert.equal("MalformedFilterException", res.json.error.code)
    end)

    it("filters by HS status and by the countries with or without a code", function()
      local all = api("GET", H.ITEMS .. "?$top=3").json.value
      S.e:configure { classification_delay = 0 }
      assert.equal(200, S.initiate({ all[1].id }, { "US", "DE" }).status)
      assert.equal(200, S.initiate({ all[2].id }, { "US" }).status)
      local classified = H.eventually(function()
        local r = api("GET", H.ITEMS .. "?hsCodeClassificationStatus=classified").json
        return r["@recordsetCount"] == 2 and r
      end)
      assert.truthy(classified)
      local both = api("GET", H.ITEMS .. "?hsCodeExistsInCountries=US,DE").json
      assert.equal(1, both["@recordsetCount"])
      assert.equal(all[1].id, both.value[1].id)
      local lacking = api("GET", H.ITEMS .. "?hsCodeDoesNotExistsInCountries=US,DE&$top=1").json
      assert.equal(24, lacking["@recordsetCount"])
      assert.truthy(lacking["@nextLink"]:find("hsCodeDoesNotExistsInCountries=US%2CDE", 1, true))
      assert.equal(0, api("GET", H.ITEMS .. "?hsCodeClassificationStatus=Pending").json["@recordsetCount"])
    end)
  end)

  describe("read, update, delete", function()
    it("gets, replaces and deletes an item; an unknown id is EntityNotFoundError", function()
      local m = S.create({ { itemCode = "A", description = "mug" }, { itemCode = "B", description = "b" } })
      local res = api("PUT", H.ITEMS .. "/" .. H.id(m[1].id), { json = { id = m[1].id, itemCode = "A2", description = "cup" } })
      assert.equal(200, res.status)
      assert.equal("A2", res.json.itemCode)
      assert.equal("cup", res.json.description)
      res = api("PUT", H.ITEMS .. "/" .. H.id(m[1].id), { json = { itemCode = "B", description = "cup" } })
      assert.equal(400, res.status)
      assert.equal("DuplicateEntry", res.json.error.code)
      res = api("DELETE", H.ITEMS .. "/" .. H.id(m[1].id))
      assert.equal(200, res.status)
      assert.equal("ObjectDeleted", res.json[1].code)
      assert.equal(2660, res.json[1].number)
      res = api("GET", H.ITEMS .. "/" .. H.id(m[1].id))
      assert.equal(404, res.status)
      assert.equal("EntityNotFoundError", res.json.error.code)
      assert.equal(4, res.json.error.details[1].number)
      assert.equal(404, api("DELETE", H.ITEMS .. "/" .. H.id(m[1].id)).status)
      -- the code is free again
      assert.equal("A", S.create({ { itemCode = "A", description = "mug" } })[1].itemCode)
    end)

    it("keeps each company's items apart", function()
      local sbx = S.e:token("avatax_api", "2000000002", "DEMO-SANDBOX-KEY-0002")
      local theirs = H.api(S.e, "POST", "/api/v2/companies/1002/items", { token = sbx,
        json = { { id = 0, itemCode = "A", description = "mug" } } }).json[1]
      assert.equal(1002, theirs.companyId)
      assert.equal(404, api("GET", H.ITEMS .. "/" .. H.id(theirs.id)).status)
      local res = api("GET", "/api/v2/companies/1002/items")
      assert.equal(403, res.status)
      assert.equal("AuthorizationException", res.json.error.code)
      -- the same code in another company is another item
      assert.equal(200, api("POST", H.ITEMS, { json = { { id = 0, itemCode = "A", description = "mug" } } }).status)
    end)
  end)

  describe("authorization", function()
    it("takes avatax_api (and 2012 CompanyUser) tokens, not hs-code-classification", function()
      local res = api("GET", H.ITEMS, { token = S.e:token("hs-code-classification") })
      assert.equal(403, res.status)
      assert.equal("AuthorizationException", res.json.error.code)
      assert.equal(200, api("GET", H.ITEMS).status)
      local g = S.e:request("GET", "/oauth/generate_token?client_id=demo-partner&client_secret=demo-partner-secret")
      assert.equal(200, api("GET", H.ITEMS, { token = g.json.access_token }).status)
      local none = assert(S.e:request("GET", H.ITEMS))
      assert.equal(401, none.status)
      assert.equal("AuthenticationIncomplete", none.json.error.code)
      -- the definitions of the Items flow too
      assert.equal(403, api("GET", "/api/v2/definitions/items/events", { token = S.e:token() }).status)
    end)
  end)

  describe("routes", function()
    it("lets the literal segments under /items/ win over {id} and {itemCode}", function()
      for _, path in ipairs { "/sync", "/upload", "/nlq/$parse", "/bytags/red", "/internal/bySystemCode/HTS", "/abc" } do
        local res = api("GET", H.ITEMS .. path)
        assert.equal(404, res.status, path)
        assert.equal("NotFound", res.json.error.code, path)
        assert.equal(4001, res.json.error.details[1].number, path)
      end
      assert.equal("NotFound", api("GET", H.ITEMS .. "/hscodes/$verify").json.error.code)
      assert.equal("NotFound", api("DELETE", H.ITEMS .. "/1/hscode-classifications-status/$dismiss").json.error.code)
      -- a literal $ also as %24
      assert.equal(200, api("GET", H.ITEMS .. "/hscode-classification/%24get-sla").status)
      assert.equal(200, api("GET", H.ITEMS .. "/hscode-classification/$get-sla").status)
    end)

    it("counts the new routes, and faults them by name and by group", function()
      local m = S.create({ { itemCode = "A", description = "mug" } })[1]
      S.e:fault("items_list", "500", 1)
      local res = api("GET", H.ITEMS)
      assert.equal(500, res.status)
      assert.equal("InternalServerError", res.json.error.code)
      assert.equal(200, api("GET", H.ITEMS).status)
      S.e:fault("items", "503", 1, { retry_after = 7 })
      res = api("GET", H.ITEMS .. "/" .. H.id(m.id))
      assert.equal(503, res.status)
      assert.equal("7", res.headers["retry-after"])
      S.e:fault("registrations_create", "truncated", 1)
      local raw = S.e:raw("POST " .. H.REGISTRATIONS .. " HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " .. S.token
        .. "\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}")
      assert.truthy(raw:match("^HTTP/1.1 201"), raw)
      local c = S.e:counters()
      assert.equal(2, c.routes.items_list)
      assert.equal(1, c.routes.items_get)
      assert.equal(1, c.routes.items_create)
      assert.equal(1, c.faults.items_list["500"])
      assert.equal(1, c.faults.items_get["503"])
    end)
  end)
end)
