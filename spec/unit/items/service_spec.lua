-- The Items service's protocol (field, methods, aliases, new; callable as
-- the flat `client:items`), and its run-time failures in the one error
-- shape, on a fake client (no server): catalog.read, paging's iterators,
-- hs.item.check and the webhook seen-sets.
local core = require "avalara.core"
local items = require "avalara.items"

-- A client with the public interface the service uses: company, call, derive,
-- and the fields api_base, items_base, scope, items_scope, sleep.
local function fake_client(answer)
  local c = { api_base = "http://api", items_base = "http://api", scope = "s", items_scope = "s", calls = {},
    sleep = function() end }
  function c.company() return 1001 end
  function c:call(method, url, body)
    self.calls[#self.calls + 1] = { method = method, url = url, body = body }
    return answer(method, url, body)
  end
  function c.derive() error("not derived: same base and scope") end
  return c
end

local function page(values)
  return 200, { value = values, ["@recordsetCount"] = #values }
end

describe("avalara.items (the service)", function()
  it("is reached as client.items, its methods called with ':'", function()
    assert.equal("items", items.field)
    local c = fake_client(function() return page { { id = 7, itemCode = "A" } } end)
    c.items = items.new(c)
    assert.equal(7, assert(c.items:list())[1].id)
    assert.equal(7, assert(c.items:item(7)).value[1].id)
    assert.equal("GET", c.calls[2].method)
    assert.matches("/items/7$", c.calls[2].url)
  end)

  it("is callable as the flat client:items(opts), the list", function()
    local c = fake_client(function() return page { { id = 1 } } end)
    c.items = items.new(c)
    local list, count = assert(c:items { top = 5 })
    assert.same({ 1, 1 }, { #list, count })
    assert.matches("%%24top=5", c.calls[1].url)
    assert.has_error(function() c.items({ top = 5 }) end,
      "client:items: call it as client:items(opts) or client.items:list(opts)")
  end)

  it("names a service method for every flat alias, and mixes the flat names in", function()
    for flat, method in pairs(items.aliases) do
      assert.is_function(items.methods[method], flat)
      assert.equal(items.methods[method], items.Client[flat], flat)
      assert.is_function(items.new({})[method], method)
    end
    assert.is_function(items.Client.items)
    assert.is_nil(items.aliases.items) -- the field itself
  end)

  it("raises on wrong arguments, naming the flat function", function()
    local c = items.new(fake_client(function() error("no request expected") end))
    assert.has_error(function() c:create({}) end, "client:create_items: 'items' must be a non-empty list of items")
    assert.has_error(function() c:classify({ 1 }, { "USA" }) end,
      "client:initiate_hscode_classification: 'countries[1]' must be a two-letter country code, such as US (got USA)")
    assert.has_error(function() c:list { nope = 1 } end)
  end)

  it("returns nil, err on run-time failures", function()
    local failure = core.error { kind = "http", status = 500, message = "down", retryable = true }
    local c = items.new(fake_client(function() return nil, failure end))
    assert.same({ nil, failure }, { c:sla() })
    assert.same({ nil, failure }, { c:delete(3) })
    local made, err = c:create { { itemCode = "A", description = "a mug" } }
    assert.is_nil(made)
    assert.same({}, err.created)
  end)

  it("checks an item as the ItemModel: body returns nil, err of kind input naming the field", function()
    assert.same({ id = 0, itemCode = "A", description = "a mug" }, assert(items.body { itemCode = "A",
      description = "a mug", brand = "not sent" }))
    local body, err = items.body { itemCode = string.rep("x", 51), description = "a mug" }
    assert.is_nil(body)
    assert.same({ "input", "itemCode", false }, { err.kind, err.field, err.retryable })
    assert.matches("'itemCode' is longer than 50 characters", err.message)
  end)

  it("each_item yields each record, then nil, err once on a failure, then nil", function()
    local n = 0
    local c = items.new(fake_client(function()
      n = n + 1
      if n == 1 then
        return 200, { value = { { id = 1 } }, ["@recordsetCount"] = 5, ["@nextLink"] = "/api/v2/next" }
      end
      return nil, core.error { kind = "timeout", message = "slow", retryable = true }
    end))
    local next_item = c:each_item()
    assert.equal(1, next_item().id)
    local rec, err = next_item()
    assert.is_nil(rec)
    assert.is_true(core.is_error(err))
    assert.equal("timeout", err.kind)
    assert.is_nil(next_item())
  end)
end)

describe("avalara.items.catalog.read", function()
  local catalog = require "avalara.items.catalog"
  local function file(name, text)
    local path = os.tmpname() .. name
    local f = assert(io.open(path, "wb"))
    f:write(text)
    f:close()
    return path
  end

  it("returns nil, err of kind input naming the file and row", function()
    local cases = {
      { file(".csv", "itemCode,summary\nA,x\n"), "no 'description' column", 1 },
      { file(".csv", 'itemCode,description\n"A,open\n'), "", 2 },
      { file(".json", '{"a": 1}'), "expected a JSON array of items" },
      { file(".csv", ""), "the file is empty" },
      { "/nonexistent/catalog.csv", "cannot read" },
    }
    for _, case in ipairs(cases) do
      local list, err = catalog.read(case[1])
      assert.is_nil(list)
      assert.is_true(core.is_error(err), case[1])
      assert.same({ "input", case[1], false }, { err.kind, err.path, err.retryable })
      assert.truthy(err.message:find(case[2], 1, true), err.message)
      if case[3] then assert.equal(case[3], err.row) end
      os.remove(case[1])
    end
    assert.has_error(function() catalog.read(42) end, "avalara.items.catalog.read: 'path' must be a file's path")
  end)

  it("reads CSV through avalara.csv, without the CLI", function()
    local path = file(".csv", "Item Code,Description\nA,a mug\n\nB,a shirt\n")
    local list = assert(catalog.read(path))
    assert.same({ "A", "B" }, { list[1].itemCode, list[2].itemCode })
    os.remove(path)
    assert.is_nil(package.loaded["avalara.cli"])
  end)
end)

describe("avalara.webhook.seen", function()
  local seen = require "avalara.webhook.seen"

  it("reports a failing store as an error of kind store, keeping the store's own error", function()
    local cause = core.error { kind = "transport", message = "connection refused", retryable = true }
    local broken = {
      cas = function() return nil, cause end,
      set = function() return nil, cause end,
    }
    local s = seen.store(broken)
    local token, err = s:claim("e1")
    assert.is_nil(token)
    assert.equal("store", err.kind)
    assert.equal(cause, err.cause)
    local ok, derr = s:done("e1", "t")
    assert.is_nil(ok)
    assert.equal("store", derr.kind)
  end)
end)

describe("avalara.hs.descriptions", function()
  local descriptions = require "avalara.hs.descriptions"

  it("remembers a code the definitions do not have as an error of kind api, asked once", function()
    local asked = 0
    local d = descriptions.new { hierarchy = function() asked = asked + 1; return {}, 0 end }
    for _ = 1, 2 do
      local text, err = d:get("US", "999999")
      assert.is_nil(text)
      assert.is_true(core.is_error(err))
      assert.same({ "api", "HsCodeNotFound" }, { err.kind, err.code })
    end
    assert.equal(1, asked)
  end)
end)
