-- Classification and definitions routes: authentication, scopes, the
-- request lifecycle, validation, quota and rate limiting.
local emu = require "spec.support.emulator"
local socket = require "socket"

local CREATE = "/api/v2/companies/1001/classifications/hs"
local SECTIONS = "/api/v2/definitions/crossborder/sections"

local function item(description, extra)
  local body = { countryOfDestination = "US", item = { itemCode = "SKU-1", description = description } }
  for k, v in pairs(extra or {}) do body.item[k] = v end
  return body
end

local function assert_avatax_error(res, status, code)
  assert.equal(status, res.status)
  assert.matches("^application/json", res.headers["content-type"])
  assert.is_table(res.json, res.body)
  assert.equal(code, res.json.error.code)
  assert.is_string(res.json.error.message)
  assert.is_string(res.json.error.target)
  local d = res.json.error.details[1]
  assert.is_string(d.code)
  assert.is_number(d.number)
  assert.is_string(d.message)
  assert.is_string(d.description)
  assert.is_string(d.faultCode)
  assert.is_string(d.helpLink)
  assert.equal("Error", d.severity)
end

describe("emulator API", function()
  local e, auth
  setup(function() e = emu.start() end)
  teardown(function() e:stop() end)
  before_each(function()
    e:reset()
    auth = { authorization = "Bearer " .. e:token() }
  end)

  local function call(method, path, body, headers)
    return assert(e:request(method, path, { json = body, headers = headers or auth }))
  end

  describe("authentication", function()
    it("needs a bearer token: 401 AuthenticationIncomplete", function()
      local res = assert(e:request("GET", SECTIONS))
      assert_avatax_error(res, 401, "AuthenticationIncomplete")
      assert.matches("^Bearer", res.headers["www-authenticate"])
      assert_avatax_error(call("GET", SECTIONS, nil, { authorization = "Basic eDp5" }), 401, "AuthenticationIncomplete")
      assert_avatax_error(call("POST", CREATE, item("shirt"), {}), 401, "AuthenticationIncomplete")
    end)

    it("refuses an unknown token: 401 BearerTokenInvalid", function()
      assert_avatax_error(call("GET", SECTIONS, nil, { authorization = "Bearer 0123" }), 401, "BearerTokenInvalid")
    end)

    it("accepts hs-code-classification and avatax_api, refuses profile with 403", function()
      for _, scope in ipairs({ "hs-code-classification", "avatax_api" }) do
        local h = { authorization = "Bearer " .. e:token(scope) }
        assert.equal(200, call("GET", SECTIONS, nil, h).status)
        assert.equal(201, call("POST", CREATE, item("cotton t-shirt"), h).status)
      end
      local h = { authorization = "Bearer " .. e:token("profile") }
      assert_avatax_error(call("GET", SECTIONS, nil, h), 403, "AuthorizationException")
      assert_avatax_error(call("POST", CREATE, item("cotton t-shirt"), h), 403, "AuthorizationException")
    end)

    it("refuses tokens expired with POST /_emulator/tokens/expire", function()
      assert.equal(200, call("GET", SECTIONS).status)
      assert.equal(200, e:request("POST", "/_emulator/tokens/expire").status)
      assert_avatax_error(call("GET", SECTIONS), 401, "BearerTokenInvalid")
    end)

    it("refuses a company outside the token's account with 403", function()
      assert_avatax_error(call("POST", "/api/v2/companies/1002/classifications/hs", item("shirt")), 403,
        "AuthorizationException")
    end)

    it("sends an x-correlation-id on every response", function()
      local a = call("GET", SECTIONS)
      local b = call("GET", SECTIONS, nil, {})
      assert.matches("^%x+%-%x+%-4%x+%-[89ab]%x+%-%x+$", a.headers["x-correlation-id"])
      assert.not_equal(a.headers["x-correlation-id"], b.headers["x-correlation-id"])
    end)
  end)

  describe("classification", function()
    it("creates PENDING (201) and becomes CLASSIFIED after the delay", function()
      e:configure({ classification_delay = 0.3 })
      local res = call("POST", CREATE, item("Men's T-shirt of cotton, knitted", { summary = "a cotton tee" }))
      assert.equal(201, res.status)
      local m = res.json
      assert.equal("PENDING", m.status)
      assert.is_string(m.id)
      assert.equal(1001, m.companyId)
      assert.equal("US", m.countryOfDestination)
      assert.equal("SKU-1", m.item.itemCode)
      assert.equal("a cotton tee", m.item.summary)
      assert.is_nil(m.hsCode)
      assert.matches("^%d%d%d%d%-%d%d%-%d%dT", m.createdDate)
      assert.equal(CREATE .. "/" .. m.id, res.headers.location)

      local pending = call("GET", CREATE .. "/" .. m.id)
      assert.equal(200, pending.status)
      assert.equal("PENDING", pending.json.status)

      socket.sleep(0.4)
      local done = call("GET", CREATE .. "/" .. m.id)
      assert.equal("CLASSIFIED", done.json.status)
      assert.matches("^%d%d%d%d%d%d+$", done.json.hsCode)
      assert.equal("6109", done.json.hsCode:sub(1, 4))
      assert.is_string(done.json.hsCodeDescription)
      assert.truthy(done.json.hsCodeDescription:lower():find("t%-shirt"))
    end)

    it("resolves on the first GET with a zero delay", function()
      e:configure({ classification_delay = 0 })
      local m = call("POST", CREATE, item("fresh apples")).json
      assert.equal("PENDING", m.status)
      local got = call("GET", CREATE .. "/" .. m.id).json
      assert.equal("CLASSIFIED", got.status)
    end)

    it("gives CANNOT_BE_CLASSIFIED with a resolution for a useless description", function()
      e:configure({ classification_delay = 0 })
      local m = call("POST", CREATE, item("zzqx")).json
      local got = call("GET", CREATE .. "/" .. m.id).json
      assert.equal("CANNOT_BE_CLASSIFIED", got.status)
      assert.equal("Not enough details.", got.resolution)
      assert.is_nil(got.hsCode)
    end)

    it("replaces the item with PUT and goes back to PENDING", function()
      e:configure({ classification_delay = 0 })
      local m = call("POST", CREATE, item("fresh apples")).json
      assert.equal("CLASSIFIED", call("GET", CREATE .. "/" .. m.id).json.status)
      e:configure({ classification_delay = 0.3 })
      local put = call("PUT", CREATE .. "/" .. m.id, { countryOfDestination = "gb",
        item = { itemCode = "SKU-2", description = "cotton t-shirt" } })
      assert.equal(200, put.status)
      assert.equal("PENDING", put.json.status)
      assert.equal("GB", put.json.countryOfDestination)
      assert.equal("SKU-2", put.json.item.itemCode)
      assert.equal(m.id, put.json.id)
      socket.sleep(0.4)
      assert.equal("6109", call("GET", CREATE .. "/" .. m.id).json.hsCode:sub(1, 4))
    end)

    it("answers 404 EntityNotFoundError for an unknown id or another company's", function()
      assert_avatax_error(call("GET", CREATE .. "/no-such-id"), 404, "EntityNotFoundError")
      assert_avatax_error(call("PUT", CREATE .. "/no-such-id", item("x")), 404, "EntityNotFoundError")
      local m = call("POST", CREATE, item("shirt")).json
      local sandbox = { authorization = "Bearer " .. e:token(nil, "2000000002", "DEMO-SANDBOX-KEY-0002") }
      assert_avatax_error(call("GET", "/api/v2/companies/1002/classifications/hs/" .. m.id, nil, sandbox),
        404, "EntityNotFoundError")
    end)

    it("validates with 422 and a detail per field", function()
      local res = call("POST", CREATE, { item = {} })
      assert_avatax_error(res, 422, "ValidationException")
      local fields = {}
      for _, d in ipairs(res.json.error.details) do fields[d.refersTo] = d.code end
      assert.same({ countryOfDestination = "ValueRequiredError", ["item.itemCode"] = "ValueRequiredError",
        ["item.description"] = "ValueRequiredError" }, fields)

      res = call("POST", CREATE, { countryOfDestination = "USA", item = { itemCode = string.rep("x", 51),
        description = string.rep("y", 2001) } })
      assert.equal(422, res.status)
      fields = {}
      for _, d in ipairs(res.json.error.details) do fields[d.refersTo] = d.code end
      assert.same({ countryOfDestination = "InvalidCountry", ["item.itemCode"] = "StringLengthError",
        ["item.description"] = "StringLengthError" }, fields)

      assert.equal(201, call("POST", CREATE, { countryOfDestination = "US", item = {
        itemCode = string.rep("x", 50), description = string.rep("y", 2000) } }).status)
      assert_avatax_error(call("POST", CREATE, { countryOfDestination = "US" }), 422, "ValidationException")
      assert_avatax_error(call("POST", CREATE, { 1, 2 }), 422, "ValidationException")
      assert_avatax_error(call("POST", CREATE, item(42)), 422, "ValidationException")
    end)

    it("answers 415 for a body that is not JSON and 400 for invalid JSON", function()
      local res = assert(e:request("POST", CREATE, { body = "countryOfDestination=US", headers = {
        authorization = auth.authorization, ["content-type"] = "application/x-www-form-urlencoded" } }))
      assert_avatax_error(res, 415, "UnsupportedMediaType")
      res = assert(e:request("POST", CREATE, { body = "{nope", headers = {
        authorization = auth.authorization, ["content-type"] = "application/json" } }))
      assert_avatax_error(res, 400, "JsonFormatError")
      res = assert(e:request("PUT", CREATE .. "/x", { body = "x", headers = {
        authorization = auth.authorization, ["content-type"] = "text/plain" } }))
      assert.equal(404, res.status) -- the id is looked up before the body
    end)

    it("answers 405 for a method the route does not have and 404 for unknown paths", function()
      local res = call("DELETE", CREATE)
      assert.equal(405, res.status)
      assert.equal("POST", res.headers.allow)
      assert.equal(404, call("GET", "/api/v2/nothing").status)
    end)
  end)

  describe("sandbox quota", function()
    it("gives 429 RequestLimitExceeded without Retry-After past the quota", function()
      e:configure({ quotas = { ["2000000002"] = 2 } })
      local h = { authorization = "Bearer " .. e:token(nil, "2000000002", "DEMO-SANDBOX-KEY-0002") }
      local path = "/api/v2/companies/1002/classifications/hs"
      assert.equal(201, call("POST", path, item("shirt"), h).status)
      assert.equal(201, call("POST", path, item("shirt"), h).status)
      local res = call("POST", path, item("shirt"), h)
      assert_avatax_error(res, 429, "RequestLimitExceeded")
      assert.is_nil(res.headers["retry-after"])
      -- only creates count; the account without quota is unaffected
      assert.equal(200, call("GET", SECTIONS, nil, h).status)
      for _ = 1, 3 do assert.equal(201, call("POST", CREATE, item("shirt")).status) end
      assert.equal(2, e:counters().quota_used["2000000002"])
    end)

    it("defaults to 100 for the sandbox account", function()
      local cfg = e:request("GET", "/_emulator/config").json
      assert.equal(100, cfg.accounts["2000000002"].quota)
      assert.is_nil(cfg.accounts["2000000001"].quota)
    end)
  end)

  describe("rate limiting", function()
    it("is off by default and gives 429 RateLimitExceeded with Retry-After when on", function()
      for _ = 1, 5 do assert.equal(200, call("GET", SECTIONS).status) end
      e:configure({ rate_limit = { requests = 2, window = 5 } })
      assert.equal(200, call("GET", SECTIONS).status)
      local second = call("GET", SECTIONS)
      local third = call("GET", SECTIONS)
      -- a window boundary may fall between the calls; one of them is limited
      local limited = second.status == 429 and second or third
      assert_avatax_error(limited, 429, "RateLimitExceeded")
      local retry = tonumber(limited.headers["retry-after"])
      assert.truthy(retry and retry >= 1 and retry <= 5)
    end)
  end)

  describe("definitions", function()
    it("lists the 21 sections", function()
      local res = call("GET", SECTIONS)
      assert.equal(200, res.status)
      assert.equal(21, res.json["@recordsetCount"])
      assert.equal(21, #res.json.value)
      assert.equal("I", res.json.value[1].section)
      assert.is_string(res.json.value[1].name)
    end)

    it("lists the children of a code, and the chapters for a country", function()
      local res = call("GET", "/api/v2/definitions/crossborder/US/6109")
      assert.equal(200, res.status)
      assert.equal(#res.json.value, res.json["@recordsetCount"])
      assert.truthy(#res.json.value >= 2)
      for _, v in ipairs(res.json.value) do
        assert.equal("6109", v.parentCode)
        assert.equal("6109", v.hsCode:sub(1, 4))
      end
      local chapters = call("GET", "/api/v2/definitions/crossborder/US")
      assert.truthy(chapters.json["@recordsetCount"] >= 90)
      assert.equal("01", chapters.json.value[1].hsCode)
    end)

    it("gives an empty list for a leaf code", function()
      local res = call("GET", "/api/v2/definitions/crossborder/US/610910")
      assert.equal(200, res.status)
      assert.equal('{"@recordsetCount":0,"value":[]}', res.body)
    end)

    it("gives the hierarchy from the chapter down to the code", function()
      local res = call("GET", "/api/v2/definitions/crossborder/US/610910/hierarchy")
      assert.equal(200, res.status)
      local codes = {}
      for i, v in ipairs(res.json.value) do codes[i] = v.hsCode end
      assert.same({ "61", "6109", "610910" }, codes)
      assert.equal(3, res.json["@recordsetCount"])
    end)

    it("answers 404 for an unknown code and 422 for a bad country", function()
      assert_avatax_error(call("GET", "/api/v2/definitions/crossborder/US/123456"), 404, "EntityNotFoundError")
      assert_avatax_error(call("GET", "/api/v2/definitions/crossborder/US/123456/hierarchy"), 404,
        "EntityNotFoundError")
      assert_avatax_error(call("GET", "/api/v2/definitions/crossborder/USA/6109"), 422, "ValidationException")
    end)
  end)
end)
