-- avalara.batch through client:classify_batch: the per-item pipeline, the
-- journal (resume, lost answers, torn writes, another input, another batch's journal),
-- duplicates, the token renewed once, Retry-After past the deadline, rate;
-- the service protocol (`client.batch`) and the error convention of
-- batch.classify and journal.open (nil, err with an avalara.error table).
local clock = require "avalara.clock"
local core = require "avalara.core"
local journal = require "avalara.batch.journal"
local socket = require "socket"
local emu = require "spec.support.emulator"
local H = require "spec.support.client"

local items = H.items

local function tmpname() return H.private_path("batch.journal") end

local function remove_journal(p)
  for _, s in ipairs { "", "-wal", "-shm" } do os.remove(p .. s) end
  os.remove((p:match("^(.*)/[^/]*$")))
end

describe("classify_batch (avalara.batch)", function()
  local e, path
  setup(function() e = emu.start() end)
  teardown(function() e:stop() end)
  before_each(function()
    e:reset()
    e:configure { classification_delay = 0 }
    path = tmpname()
  end)
  after_each(function()
    remove_journal(path)
    clock.reset()
  end)

  it("streams per item: results come while creates are still to be sent, in the library on the multi", function()
    e:configure { latency_ms = 20 }
    local c = H.client(e)
    local creates_at_first
    local results, summary = c:classify_batch(items(60), { concurrency = 4, interval = 0.01,
      on_progress = function(done)
        if done == 1 then creates_at_first = H.route(e, "classification_create") end
      end })
    assert.equal(60, summary.ok)
    for i = 1, 60 do assert.equal("SKU-" .. i, results[i].item.itemCode) end
    -- the first item was done (created and polled) before most creates had gone out
    assert.is_true(creates_at_first < 30, "creates sent before the first result: " .. creates_at_first)
    assert.equal(60, H.route(e, "classification_create"))
    assert.equal(60, summary.creates)
  end)

  it("sends its first creates before taking the whole window from the source: a few rounds ahead", function()
    local c = H.client(e)
    local list, taken, taken_at_first = items(600), 0, nil
    local function source()
      local i = 0
      return function()
        i = i + 1
        if not list[i] then return nil end
        taken = math.max(taken, i)
        return i, list[i]
      end
    end
    local state = journal.memory()
    c.batch:plan(state, source, { country = "US" })
    state:commit()
    taken = 0
    local summary = c.batch:run(source, function() end, { state = state, concurrency = 4, wait = false,
      on_progress = function(done) if done == 1 then taken_at_first = taken end end })
    assert.equal(600, summary.ok)
    -- the window (512 rows) used to be taken whole before the first create went out
    assert.is_true(taken_at_first <= 4 * 4, "rows taken before the first answer: " .. taken_at_first)
  end)

  it("builds each item's create body once: the checks before any request, the plan and the run share it", function()
    local item = require "avalara.hs.item"
    local body, built = item.body, 0
    item.body = function(...) built = built + 1; return body(...) end
    local ok, results, summary = pcall(H.client(e).classify_batch, H.client(e), items(30), { concurrency = 4,
      wait = false })
    item.body = body
    assert(ok, results)
    assert.equal(30, summary.ok)
    assert.equal("SKU-30", results[30].item.itemCode)
    assert.equal(30, built) -- was 90: checked, planned, then admitted, each building it anew
  end)

  it("resumes from its journal: an interrupted batch, run again, creates each item once", function()
    e:configure { latency_ms = 10 }
    local c = H.client(e)
    local list = items(80)
    local results, summary = c:classify_batch(list, { journal = path, concurrency = 4, interval = 0.01,
      should_stop = function() return H.route(e, "classification_create") >= 30 and "stop" or nil end })
    assert.is_true(summary.interrupted)
    assert.equal("interrupted", summary.stopped)
    assert.is_true(#results < 80)
    local first = H.route(e, "classification_create")
    results, summary = assert(c:classify_batch(list, { journal = path, concurrency = 4, interval = 0.01 }))
    assert.is_nil(summary.stopped)
    for i = 1, 80 do assert.equal("SKU-" .. i, results[i].item.itemCode) end
    assert.is_true(summary.resumed > 0)
    -- every item created exactly once over the two runs
    assert.equal(80, H.route(e, "classification_create"))
    assert.is_true(first >= 30)
    -- a third run sends nothing at all
    local before = e:counters().requests
    results, summary = assert(c:classify_batch(list, { journal = path }))
    assert.equal(80, summary.resumed)
    assert.equal(0, summary.requests)
    assert.equal(before, e:counters().requests)
    assert.equal("CLASSIFIED", results[80].status)
  end)

  it("looks up by id the items whose create was sent but whose answer was lost", function()
    local c = H.client(e)
    local list = items(6)
    -- a journal that says rows 1-4 were sent; only rows 1 and 2 reached the service
    local j = assert(journal.open(path, { company = c.company_id, api_base = c.api_base }))
    local batch = require "avalara.batch"
    local item_model = require "avalara.hs.item"
    for i, it in ipairs(list) do
      local body = item_model.body(it, { company_id = 1001 })
      j:queue(i, batch.id_of(body), batch.canonical(body))
      if i <= 4 then j:sent(i) end
    end
    j:commit()
    j:close()
    assert(c:classify(list[1]))
    assert(c:classify(list[2]))
    -- a minute later: the creates that run sent are done at the service, or lost (at once, a 404 is
    -- looked up again after the timeout: spec/integration/cli/batch_kill_spec.lua)
    clock.advance(60)
    local results, summary = assert(c:classify_batch(list, { journal = path, interval = 0.01 }))
    assert.equal(6, summary.ok)
    for i = 1, 6 do assert.equal("CLASSIFIED", results[i].status) end
    -- 2 by hand, then 4 (rows 3 and 4: looked up, not found; rows 5 and 6: never sent)
    assert.equal(6, H.route(e, "classification_create"))
    assert.equal(4, summary.creates)
  end)

  it("a create sent by a run that just ended and not found is looked up again after the timeout, then created; "
    .. "a last commit in the future (the clock set back) waits no longer", function()
    local c = H.client(e, { timeout = 1 })
    local list = items(3)
    local j = assert(journal.open(path, { company = c.company_id, api_base = c.api_base }))
    local batch = require "avalara.batch"
    local item_model = require "avalara.hs.item"
    for i, it in ipairs(list) do
      local body = item_model.body(it, { company_id = 1001 })
      j:queue(i, batch.id_of(body), batch.canonical(body))
      j:sent(i)
    end
    clock.advance(3600) -- committed an hour "from now"
    j:commit()
    j:close()
    clock.reset()
    local t0 = socket.gettime()
    local results, summary = assert(c:classify_batch(list, { journal = path, interval = 0.01 }))
    local waited = socket.gettime() - t0
    assert.equal(3, summary.ok)
    assert.equal("CLASSIFIED", results[3].status)
    -- each looked up twice (404, 404 after now + 1 s + timeout), then created once
    assert.equal(3, H.route(e, "classification_create"))
    assert.equal(6 + 3, H.route(e, "classification_get"))
    assert.is_true(waited >= 1.9 and waited < 5, "waited " .. waited .. " s")
  end)

  it("tolerates a torn last write of its journal", function()
    local c = H.client(e)
    local list = items(20)
    assert(c:classify_batch(list, { journal = path, interval = 0.01,
      should_stop = function() return H.route(e, "classification_create") >= 8 and "abort" or nil end }))
    -- half a record at the end of the write-ahead log, as a power cut mid-write leaves it
    local f = assert(io.open(path .. "-wal", "ab"))
    f:write(string.rep("\0\1torn", 700))
    f:close()
    clock.advance(60) -- a minute later (the creates abandoned by the abort are done at the service)
    local results, summary = assert(c:classify_batch(list, { journal = path, interval = 0.01 }))
    assert.equal(20, summary.ok)
    assert.equal("SKU-20", results[20].item.itemCode)
    assert.equal(20, H.route(e, "classification_create"))
  end)

  it("takes the journal of another input row by row; refuses the journal of another batch (another company, "
    .. "another country)", function()
    local c = H.client(e)
    assert(c:classify_batch(items(3), { journal = path, interval = 0.01 }))
    assert.equal(3, H.route(e, "classification_create"))
    -- SKU-2 edited, SKU-3 removed, OTHER-1 new: two creates
    local list = items(2)
    list[2].description = "wool sweater"
    list[3] = items(1, "OTHER-")[1]
    local results, summary = assert(c:classify_batch(list, { journal = path, interval = 0.01 }))
    assert.equal(5, H.route(e, "classification_create"))
    assert.same({ 1, 1, 1, 1 }, { summary.unchanged, summary.changed, summary.new, summary.removed })
    assert.equal("wool sweater", results[2].item.description)
    assert.equal("OTHER-1", results[3].item.itemCode)
    local c2 = H.client(e, { account_id = H.SBX_ACCOUNT, license_key = H.SBX_KEY, company_id = H.SBX_COMPANY })
    local r, err = c2:classify_batch(items(3), { journal = path })
    assert.is_nil(r)
    assert.is_true(core.is_error(err))
    assert.equal("input", err.kind)
    assert.equal(path, err.path)
    assert.matches("belongs to another batch %(its company is 1001, this one's is 1002%)", err.message)
    r, err = c:classify_batch(items(3), { journal = path, country = "CA" })
    assert.is_nil(r)
    assert.matches("belongs to another batch %(its country is unset, this one's is CA%)", err.message)
    -- restart = true discards it
    local _
    _, summary = assert(c2:classify_batch(items(3, "OTHER-"), { journal = path, restart = true, interval = 0.01 }))
    assert.equal(3, summary.ok)
  end)

  it("classifies a duplicate once and reports it for both rows; a conflicting one raises", function()
    local c = H.client(e)
    local list = items(5)
    list[6] = { itemCode = "SKU-2", description = list[2].description, countryOfDestination = "us" }
    list[7] = { itemCode = "SKU-2", description = list[2].description, countryOfDestination = "CA" }
    local results, summary = c:classify_batch(list, { interval = 0.01 })
    assert.equal(7, summary.ok)
    assert.equal(1, summary.duplicates)
    assert.equal(results[2], results[6])
    assert.equal("1001-SKU-2-CA", results[7].id)
    assert.equal(6, H.route(e, "classification_create"))
    list[8] = { itemCode = "SKU-3", description = "something else", countryOfDestination = "US" }
    assert.has_error(function() c:classify_batch(list) end,
      "client:classify_batch: items[8]: item code SKU-3 for US is also on an earlier row (row 3), with other "
      .. "details: one classification per item code and country")
  end)

  it("renews a revoked token once, the other workers waiting, not once per item", function()
    local c = H.client(e)
    assert(c:token())
    assert(e:request("POST", "/_emulator/tokens/expire"))
    local _, summary = c:classify_batch(items(100), { concurrency = 8, interval = 0.01 })
    assert.equal(100, summary.ok)
    assert.equal(2, H.grants(e))
    -- at most one round of requests went out with the dead token
    assert.is_true(H.route(e, "classification_create") <= 100 + 8)
  end)

  it("a 403 renews the token once for the batch, then each item fails with kind permission, no loop", function()
    local c = H.client(e, { scope = "profile" })
    local results, summary = c:classify_batch(items(20), { concurrency = 4, interval = 0.01 })
    assert.equal(20, summary.failed)
    for i = 1, 20 do
      assert.equal("permission", results[i].kind, i)
      assert.equal(403, results[i].status)
    end
    assert.equal(2, H.grants(e))
    assert.is_true(H.route(e, "classification_create") <= 40)
  end)

  it("fails an item whose Retry-After is past the retry deadline, saying so", function()
    local c = H.client(e, { retries = { max_attempts = 4, base_delay = 0.01, max_delay = 0.05, deadline = 2 } })
    e:fault("classification_create", "503", 1, { retry_after = 60 })
    local results, summary = c:classify_batch(items(2), { concurrency = 1, interval = 0.01 })
    assert.equal(1, summary.failed)
    local err = results[1]
    assert.is_true(core.is_error(err))
    assert.equal(503, err.status)
    assert.is_true(err.retryable)
    assert.matches("the service asks to retry after 60 s, beyond the retry deadline of 2 s", err.message)
    assert.equal("CLASSIFIED", results[2].status)
  end)

  it("keeps to `rate` requests per second", function()
    local c = H.client(e)
    assert(c:token())
    local t0 = socket.gettime()
    local _, summary = c:classify_batch(items(21), { rate = 20, wait = false, concurrency = 8 })
    assert.equal(21, summary.ok)
    -- 21 requests evenly spaced at 20 per second take at least a second
    assert.is_true(socket.gettime() - t0 >= 0.95)
  end)

  it("raises on an unknown option name", function()
    local c = H.client(e)
    assert.has_error(function() c:classify_batch(items(1), { concurency = 2 }) end,
      "client:classify_batch: unknown option 'concurency'")
    assert.has_error(function() c:classify_batch(items(1), { journal = 5 }) end,
      "client:classify_batch: 'journal' must be a string")
  end)

  it("is a service: client.batch:classify as the flat classify_batch; errors name the flat name, as hs's do", function()
    local batch = require "avalara.batch"
    assert.equal("batch", batch.field)
    assert.equal("classify", batch.aliases.classify_batch)
    local c = H.client(e)
    local service = batch.new(c)
    for flat, method in pairs(batch.aliases) do
      assert.is_function(c[flat], flat)
      assert.is_function(service[method], method)
    end
    local results, summary = assert(service:classify(items(3), { interval = 0.01, journal = path }))
    assert.equal(3, summary.ok)
    assert.equal("SKU-3", results[3].item.itemCode)
    -- the same journal, through the flat name: nothing sent again
    local _, again = assert(c:classify_batch(items(3), { journal = path }))
    assert.equal(3, again.resumed)
    assert.equal(3, H.route(e, "classification_create"))
    assert.has_error(function() service:classify(items(1), { concurency = 2 }) end,
      "client:classify_batch: unknown option 'concurency'")
    assert.has_error(function() service:classify("x") end, "client:classify_batch: 'items' must be a table")
  end)

  it("drives the core's multi with libcurl and a Lua transport one request at a time, telling on_request", function()
    local driver = require "avalara.transport.driver"
    local c = H.client(e)
    assert.is_nil(c:transport_info().lua)
    assert.is_true(c:transport_info().parallel)
    assert.equal("multi", driver.new(c, { concurrency = 2 }).kind)
    local seen, wire = {}, 0
    local lc = H.client(e, { transport = H.socket_transport(function() wire = wire + 1 end),
      on_request = function(r) if r.url:find("/classifications", 1, true) then seen[#seen + 1] = r end end })
    assert.is_function(lc:transport_info().lua)
    assert.is_false(lc:transport_info().parallel)
    assert.equal("serial", driver.new(lc, { concurrency = 2 }).kind)
    local results, summary = assert(lc:classify_batch(items(3), { concurrency = 2, interval = 0.01 }))
    assert.equal(3, summary.ok)
    assert.equal("CLASSIFIED", results[3].status)
    -- every request of the batch went through the Lua transport and was told to on_request (beside the grant)
    assert.equal(summary.requests, #seen)
    assert.is_true(wire >= summary.requests)
    assert.equal("POST", seen[1].method)
    assert.equal(201, seen[1].status)
    assert.equal(1, seen[1].attempt)
  end)

  it("returns nil, err of kind store or input when the journal cannot be used; open returns the same", function()
    local c = H.client(e)
    -- not a journal at all
    local f = assert(io.open(path, "wb"))
    f:write("itemCode,description\nA,mug\n")
    f:close()
    local r, err = c:classify_batch(items(2), { journal = path })
    assert.is_nil(r)
    assert.is_true(core.is_error(err))
    assert.equal("input", err.kind)
    assert.equal(path, err.path)
    assert.matches("is not a journal", err.message)
    os.remove(path)
    -- in use by another holder (the file is locked)
    local j = assert(journal.open(path, { company = c.company_id, api_base = c.api_base }))
    local j2, err2 = journal.open(path, { company = c.company_id, api_base = c.api_base })
    assert.is_nil(j2)
    assert.is_true(core.is_error(err2))
    assert.equal("store", err2.kind)
    assert.matches("in use by another process", err2.message)
    j:close()
    -- a folder others may write to: refused before any file is made there
    local open_dir = path:match("^(.*)/[^/]*$") .. "/shared"
    assert(os.execute("mkdir -m 0777 " .. open_dir .. " && chmod 0777 " .. open_dir))
    local j3, err3 = journal.open(open_dir .. "/j", {})
    assert.is_nil(j3)
    assert.equal("store", err3.kind)
    assert.equal(open_dir .. "/j", err3.path)
    assert.is_string(err3.message)
    os.remove(open_dir)
    assert.has_error(function() journal.open(42) end, "journal.open: 'path' must be a string")
    assert.equal(0, H.route(e, "classification_create"))
  end)

  it("returns nil, err of kind store when its journal fills up during the run; what it kept resumes", function()
    local c = H.client(e)
    local list = items(40)
    local j = assert(journal.open(path, { company = c.company_id, api_base = c.api_base }))
    -- SQLite refuses to grow the file past a few more pages ("database or disk is full"), as a full disk would:
    -- the rows fit, their results do not
    local cur = assert(j.conn:execute("PRAGMA page_count"))
    local pages = tonumber(cur:fetch())
    cur:close()
    local set = j.conn:execute("PRAGMA max_page_count = " .. (pages + 2))
    if type(set) == "userdata" then set:close() end
    local r, err = c:classify_batch(list, { state = j, concurrency = 2, interval = 0.01 })
    assert.is_nil(r)
    assert.is_true(core.is_error(err), tostring(err))
    assert.equal("store", err.kind)
    assert.equal(path, err.path)
    assert.matches("full", err.message)
    -- how far the requests got before the journal refused a write depends on timing (a loaded
    -- machine sends them all first); what counts is below: nothing is created twice
    local sent = H.route(e, "classification_create")
    assert.is_true(sent > 0 and sent <= 40, sent)
    -- a journal that may grow again: the run resumes (a minute later), nothing created twice
    clock.advance(60)
    local results, summary = assert(c:classify_batch(list, { journal = path, interval = 0.01 }))
    assert.equal(40, summary.ok)
    assert.equal("SKU-40", results[40].item.itemCode)
    assert.equal(40, H.route(e, "classification_create"))
  end)
end)
