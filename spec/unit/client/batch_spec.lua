-- The batch's parts that need no service: its queues, the results as the
-- journal keeps them, the planning pass over the in-memory state, the errors
-- it makes, and the old module names that still load the moved modules.
local core = require "avalara.core"
local queue = require "avalara.batch.queue"
local result = require "avalara.batch.result"
local plan = require "avalara.batch.plan"
local memory = require "avalara.batch.memory"

describe("avalara.batch.queue", function()
  it("a FIFO whose front door goes first", function()
    local q = queue.fifo()
    assert.is_true(q:empty())
    q:push("a"); q:push("b"); q:front("z")
    assert.equal(3, q:size())
    assert.equal("z", q:pop())
    assert.equal("a", q:pop())
    assert.equal("b", q:pop())
    assert.is_nil(q:pop())
    assert.is_true(q:empty())
    assert.equal(0, q:size())
  end)

  it("a heap that gives the earliest step first, whatever the order pushed", function()
    local h = queue.heap()
    assert.is_nil(h:peek())
    local ats = { 5, 1, 9, 3, 3, 7, 0.5, 8, 2 }
    for i, at in ipairs(ats) do h:push(at, i) end
    table.sort(ats)
    for _, at in ipairs(ats) do
      assert.equal(at, h:peek())
      h:pop()
    end
    assert.equal(0, h.n)
  end)
end)

describe("avalara.batch.result", function()
  it("keeps a model and an error through the journal's JSON, numbers as integers", function()
    local model = { id = "1001-A-US", status = "CLASSIFIED", hsCode = "691110" }
    assert.same(model, result.decode(result.encode(model)))
    local err = core.error { kind = "api", status = 422, code = "InvalidItem", message = "no", retryable = false,
      request_id = "r-1" }
    local back = result.decode(result.encode(err))
    assert.is_true(core.is_error(back))
    assert.equal(422, back.status)
    assert.equal(math.type and "integer" or "number", math.type and math.type(back.status) or type(back.status))
    assert.equal("InvalidItem", back.code)
    assert.equal("r-1", back.request_id)
  end)

  it("tries again what retrying may change, and a PENDING model only when waiting", function()
    assert.is_true(result.again(core.error { kind = "http", status = 503, message = "x", retryable = true }, true))
    assert.is_true(result.again(core.error { kind = "timeout", message = "x" }, false))
    assert.is_false(result.again(core.error { kind = "api", status = 422, message = "x", retryable = false }, true))
    assert.is_true(result.again({ status = "PENDING" }, true))
    assert.is_false(result.again({ status = "PENDING" }, false))
    assert.is_false(result.again({ status = "CLASSIFIED" }, true))
  end)

  it("makes its own errors as avalara.error tables with a known kind", function()
    local quota = result.not_attempted(core.error { kind = "quota", status = 429, code = "RequestLimitExceeded",
      message = "used up" })
    assert.is_true(core.is_error(quota))
    assert.equal("quota", quota.kind)
    assert.is_true(quota.not_attempted)
    assert.matches("quota is used up %(used up%)", quota.message)
    local invalid = result.invalid(7, "'description' is required")
    assert.equal("input", invalid.kind)
    assert.equal(7, invalid.row)
    assert.is_true(invalid.invalid)
    local late = result.beyond_deadline(core.error { kind = "http", status = 503, message = "busy" }, 60, 2)
    assert.equal(503, late.status)
    assert.is_true(late.retryable)
    assert.matches("retry after 60 s, beyond the retry deadline of 2 s", late.message)
    assert.equal("timeout", result.still_pending("id-1", 5).kind)
    assert.equal("parse", result.no_body(201).kind)
  end)
end)

describe("avalara.batch.plan over the in-memory state", function()
  local client = { company_id = 1001 }
  local function source(list)
    return function()
      local i = 0
      return function()
        i = i + 1
        if list[i] == nil then return nil end
        return i, list[i]
      end
    end
  end

  it("queues each row, marks a duplicate, reports a conflict and an invalid row", function()
    local state = memory.new()
    local out = plan.plan(client, state, source {
      { itemCode = "A", description = "mug" },
      { itemCode = "B", description = "shirt" },
      { itemCode = "A", description = "mug" },
      { itemCode = "B", description = "other" },
      { itemCode = "C" },
    }, { country = "US" })
    assert.equal(5, out.rows)
    assert.equal("queued", state:get(1).state)
    assert.equal("1001-A-US", state:get(1).key)
    assert.equal(1, state:get(3).dup_of)
    assert.is_nil(state:get(4))
    assert.matches("item code B for US is also on an earlier row %(row 2%)", out.conflicts[4])
    assert.equal(2, #out.problems)
    assert.equal(5, out.problems[2].row)
    assert.matches("'description' is required", out.problems[2].message)
  end)

  -- The nightly case, over the state in memory and over a journal file.
  local function nightly(state)
    plan.plan(client, state, source { { itemCode = "A", description = "mug" }, { itemCode = "B", description = "cup" },
      { itemCode = "C", description = "pan" }, { itemCode = "D", description = "pot" } }, { country = "US" })
    state:sent(2)
    state:done(3, '{"status":"CLASSIFIED"}')
    local out = plan.plan(client, state, source { { itemCode = "A", description = "mug" },
      { itemCode = "C", description = "pan" }, { itemCode = "B", description = "cup" },
      { itemCode = "D", description = "kettle" }, { itemCode = "E", description = "jug" },
      { itemCode = "C", description = "pan" } }, { country = "US", count = 10 })
    assert.same({ 3, 1, 1, 0, 1 }, { out.unchanged, out.changed, out.new, out.removed, out.duplicates })
    assert.is_true(out.journal)
    assert.equal("done", state:get(2).state) -- C, done, moved from row 3
    assert.equal("sent", state:get(3).state) -- B: its create was sent: looked up, never sent again
    assert.equal("queued", state:get(4).state) -- D, another description
    assert.equal(2, state:get(6).dup_of)
    assert.same({ 3, 1, 1 }, { out.create, out.lookup, out.resumed })
    assert.same({ 1, 4, 5 }, { out.listed[1].row, out.listed[2].row, out.listed[3].row })
    assert.same({ "unchanged", "changed", "new" }, { out.listed[1].verdict, out.listed[2].verdict, out.listed[3].verdict })
    -- the same rows minus the last two: A and its rows as they are, E removed
    out = plan.plan(client, state, source { { itemCode = "A", description = "mug" },
      { itemCode = "C", description = "pan" }, { itemCode = "B", description = "cup" },
      { itemCode = "D", description = "kettle" } }, { country = "US" })
    assert.same({ 4, 0, 0, 1 }, { out.unchanged, out.changed, out.new, out.removed })
    assert.is_nil(state:get(5))
    -- a rollback after a rebase puts everything back
    state:commit()
    out = plan.plan(client, state, source { { itemCode = "Z", description = "mug" } }, { country = "US" })
    assert.same({ 0, 1, 4 }, { out.unchanged, out.new, out.removed })
    if state.path then
      state:rollback()
      assert.equal("1001-A-US", state:get(1).key)
      assert.equal("sent", state:get(3).state)
    end
  end

  it("an edited row in its place is queued again there (its result forgotten); its duplicates follow it or "
    .. "conflict", function()
    local state = memory.new()
    plan.plan(client, state, source { { itemCode = "A", description = "mug" }, { itemCode = "B", description = "cup" },
      { itemCode = "A", description = "mug" } }, { country = "US" })
    state:done(1, '{"status":"CLASSIFIED"}')
    state:done(2, '{"status":"CLASSIFIED"}')
    local out = plan.plan(client, state, source { { itemCode = "A", description = "bowl" },
      { itemCode = "B", description = "cup" }, { itemCode = "A", description = "bowl" } }, { country = "US" })
    assert.same({ 1, 1, 0, 0, 1 }, { out.unchanged, out.changed, out.new, out.removed, out.duplicates })
    assert.is_nil(state.previous_keys) -- nothing set aside
    assert.same({ "queued", "done" }, { state:get(1).state, state:get(2).state })
    assert.is_nil(state:get(1).result)
    assert.equal(1, state:get(3).dup_of)
    -- the first edited again, the duplicate not: a conflict, named
    out = plan.plan(client, state, source { { itemCode = "A", description = "jug" },
      { itemCode = "B", description = "cup" }, { itemCode = "A", description = "bowl" } }, { country = "US" })
    assert.matches("item code A for US is also on an earlier row %(row 1%), with other details", out.conflicts[3])
  end)

  it("takes a state recorded for another input by item code and country: unchanged, changed, new, removed",
    function()
    nightly(memory.new())
  end)

  it("the same over a journal file", function()
    local dir = assert(io.popen("mktemp -d")):read("*l")
    local j = assert(require("avalara.batch.journal").open(dir .. "/j", { company = 1001 }))
    local ok, err = pcall(nightly, j)
    j:close()
    require("avalara.batch.journal").remove(dir .. "/j")
    os.remove(dir)
    assert(ok, err)
  end)
end)

describe("avalara.batch as a service", function()
  it("names its field and its flat aliases, and raises naming the argument", function()
    local batch = require "avalara.batch"
    assert.equal("batch", batch.field)
    assert.same({ classify_batch = "classify" }, batch.aliases)
    assert.has_error(function() batch.new() end, "batch.new: 'client' must be a client")
    assert.is_function(batch.new({}).classify)
    local none = function() return function() end end
    assert.has_error(function() batch.run({}, "rows", none, {}) end, "batch.run: 'source' must be a function")
    assert.has_error(function() batch.new({}):run(none, nil, {}) end, "client.batch:run: 'sink' must be a function")
    assert.has_error(function() batch.new({}):plan({}, none, 5) end, "client.batch:plan: 'opts' must be a table")
    -- no options at all is none
    local out = batch.plan({ company_id = 1001 }, memory.new(), none)
    assert.equal(0, out.rows)
  end)
end)

describe("moved modules", function()
  it("still load under their old names", function()
    assert.equal(require "avalara.transport.driver", require "avalara.multi")
    assert.equal(require "avalara.batch.journal", require "avalara.journal")
    assert.is_function(require("avalara.journal").memory)
    assert.is_function(require("avalara.journal").encode_result)
  end)
end)
