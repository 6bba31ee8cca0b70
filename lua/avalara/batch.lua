--- Batches of classifications at catalog scale (issue 16): a per-item
-- streaming pipeline over a journal, so that nothing is lost and nothing is
-- paid twice.
--
--    local batch = require "avalara.batch"
--    local results, summary = batch.classify(client, items, { journal = "run.journal", rate = 50 })
--
-- `client:classify_batch` calls `batch.classify`; the `hscode batch` command
-- uses `batch.plan` and `batch.run` with its own streaming source and sink.
--
-- **Per item.** Each item goes through its own steps: its create, then its
-- polls as soon as the create returns, while the next items flow in; at most
-- `concurrency` requests are in flight (on the core's multi handle, see
-- `avalara.multi`). Items are taken from the source only while fewer than a
-- window of them (`window`, default 16 × concurrency, at least 512) wait to
-- be written, and results go to the sink in input order as soon as every
-- earlier one is there: memory is bounded by the window, not by the catalog.
--
-- **Journal.** Every row is recorded (`avalara.journal`): queued, create
-- sent (committed to disk before the create goes out), created, done with its
-- model or error. A later run with the same journal takes the finished rows
-- from it, looks up by id (a GET) the rows whose create was sent but whose
-- answer was lost, polls the created ones, and creates only the rest. Rows
-- that failed for a reason worth another try (a 5xx, a timeout) are tried
-- again; a refusal (422) is kept.
--
-- **Rate and quota.** `rate` spaces the requests evenly (a token bucket of one);
-- a 429 `RateLimitExceeded` halves the requests in flight (growing back by one
-- after each full round of successes) and pauses every worker until its
-- `Retry-After`; it does not count as an attempt. A `Retry-After` longer than
-- the retry deadline fails the item saying so. A quota exhaustion (429
-- `RequestLimitExceeded`) stops the creates at once: what is done is kept,
-- created items are still polled, the rest is reported "not attempted"
-- (`err.not_attempted`, kind `quota`) and stays queued in the journal for the
-- next run. A 401 `BearerTokenInvalid` renews the token once while the other
-- requests wait; if no token can be had the batch stops the same way.
--
-- **Duplicates.** A row with the same item code and country as an earlier
-- row (the same classification id) is not sent: it gets the earlier row's
-- result. The same code and country with other details is a conflict,
-- reported by `plan`.
-- @module avalara.batch
local core = require "avalara.core"
local cjson = require "cjson"
local retry = require "avalara.retry"
local paths = require "avalara.paths"
local item_model = require "avalara.hs.item"
local journal = require "avalara.journal"
local multi = require "avalara.multi"

local M = {}

local now = retry.now

-- ---------------------------------------------------------------- helpers

local function is_callable(f)
  if type(f) == "function" then return true end
  local mt = getmetatable(f)
  return mt ~= nil and type(mt) == "table" and mt.__call ~= nil
end

--- What is sent for an item, as text in a fixed order (what the journal
-- keeps of each row): two rows are the same item when these are equal.
-- @tparam table body a create body (`avalara.item.body`)
-- @treturn string
function M.canonical(body)
  local it = body.item
  local function params(list)
    if not list then return false end
    local out = {}
    for i, p in ipairs(list) do out[i] = { p.name, p.value, p.unit or false } end
    return out
  end
  return cjson.encode { body.countryOfDestination, it.itemCode, it.description, it.summary or false, it.itemGroup,
    params(it.classificationParameters), params(it.parameters) }
end
local canonical = M.canonical

--- The classification id of a create body: `{companyId}-{itemCode}-{country}`.
-- @tparam table body as `avalara.item.body` builds it
-- @treturn string
function M.id_of(body)
  return body.item.companyId .. "-" .. body.item.itemCode .. "-" .. body.countryOfDestination
end

-- Whether a model read back (by id) is the classification of this body.
local function same_item(model, body)
  local a, b = type(model) == "table" and model.item, body.item
  return type(a) == "table" and a.itemCode == b.itemCode and a.description == b.description
    and (a.summary or false) == (b.summary or false) and (a.itemGroup or b.itemGroup) == b.itemGroup
end

local function not_attempted(reason)
  local e = { kind = reason.kind == "quota" and "quota" or reason.kind or "api", code = reason.code,
    status = reason.status, not_attempted = true, retryable = false,
    message = "not attempted: " .. (reason.kind == "quota" and "the classification quota is used up"
      or "no access token could be had") .. " (" .. tostring(reason.message) .. ")" }
  return core.error(e)
end

-- A retryable error whose Retry-After is past the deadline: said in its message.
local function beyond_deadline(err, retry_after, deadline)
  local e = {}
  for _, k in ipairs { "kind", "status", "code", "number", "request_id", "retry_after", "body" } do e[k] = err[k] end
  e.retryable = true
  e.message = string.format("%s (the service asks to retry after %g s, beyond the retry deadline of %g s)",
    tostring(err.message), retry_after, deadline)
  return core.error(e)
end

-- A binary heap of {at, rec}: the next timed step first.
local function heap()
  local h = { n = 0 }
  function h.push(at, rec)
    h.n = h.n + 1
    local i = h.n
    h[i] = { at, rec }
    while i > 1 do
      local p = math.floor(i / 2)
      if h[p][1] <= h[i][1] then break end
      h[p], h[i] = h[i], h[p]
      i = p
    end
  end
  function h.peek() return h[1] and h[1][1] end
  function h.pop()
    local top = h[1]
    h[1], h[h.n] = h[h.n], nil
    h.n = h.n - 1
    local i = 1
    while true do
      local l, r, m = 2 * i, 2 * i + 1, i
      if l <= h.n and h[l][1] < h[m][1] then m = l end
      if r <= h.n and h[r][1] < h[m][1] then m = r end
      if m == i then break end
      h[m], h[i] = h[i], h[m]
      i = m
    end
    return top[2]
  end
  return h
end

-- A FIFO with a front door (retries and renewals go first).
local function fifo()
  local q = { head = 1, tail = 0 }
  function q.push(rec) q.tail = q.tail + 1; q[q.tail] = rec end
  function q.front(rec) q.head = q.head - 1; q[q.head] = rec end
  function q.pop()
    if q.head > q.tail then return nil end
    local rec = q[q.head]
    q[q.head] = nil
    q.head = q.head + 1
    return rec
  end
  function q.empty() return q.head > q.tail end
  return q
end

-- ---------------------------------------------------------------- options

local OPTIONS = { concurrency = "number", wait = "boolean", country = "string", item_group = "string",
  timeout = "number", interval = "number", on_progress = "function", journal = "string", restart = "boolean",
  rate = "number", window = "number", should_stop = "function", describe = "table", total = "number",
  state = "table" }

local function check_options(opts, where)
  if type(opts) ~= "table" then error(where .. ": 'opts' must be a table", 3) end
  for k, v in pairs(opts) do
    local want = OPTIONS[k]
    if not want then error(where .. ": unknown option '" .. tostring(k) .. "'", 3) end
    local ok = want == "function" and is_callable(v) or type(v) == want
    if not ok then error(where .. ": '" .. k .. "' must be a " .. want, 3) end
    if want == "number" and k ~= "total" and v <= 0 then error(where .. ": '" .. k .. "' must be positive", 3) end
  end
end

-- ---------------------------------------------------------------- plan

-- The create body of a source item: body, or nil, message.
local function prepare(client, item, opts)
  local ok, body = pcall(item_model.body, item, { company_id = client.company_id, country = opts.country,
    item_group = opts.item_group, where = "\0" })
  if not ok then
    local message = tostring(body)
    local at = message:find("\0: ", 1, true)
    return nil, at and message:sub(at + 3) or message
  end
  return body
end

--- Records every row of `source` in `state` (queued, unless the journal has
-- it already) and checks it: a row that differs from what the journal has
-- for it means the journal belongs to another input; two rows with one item
-- code and country but other details conflict (one classification per code
-- and country). Commits nothing when it returns a `mismatch`.
-- @param client the `avalara.Client`
-- @tparam table state a journal (`avalara.journal`)
-- @tparam function source returns an iterator of `row, item, problem` (problem: a
-- message for a row that is not valid, which is skipped)
-- @tparam table opts `{country, item_group}`
-- @treturn table `{rows = n, problems = {{row, message, item}...}, conflicts = {[row] = message},
-- done = n (finished in the journal), mismatch = message | nil}`
function M.plan(client, state, source, opts)
  local out = { rows = 0, problems = {}, conflicts = {}, done = 0 }
  for row, item, problem in source() do
    out.rows = row
    local body
    if not problem then body, problem = prepare(client, item, opts) end
    if problem then
      out.problems[#out.problems + 1] = { row = row, message = problem, item = item }
    else
      local key, canon = M.id_of(body), canonical(body)
      local have = state:get(row)
      if have and have.item ~= canon then
        state:rollback()
        out.mismatch = string.format("row %d (item code %s) is not the row %d the journal recorded", row,
          body.item.itemCode, row)
        return out
      end
      if have then
        if have.state == "done" then out.done = out.done + 1 end
      else
        local first = state:queue(row, key, canon)
        local lead = first and state:peek(first)
        if lead and lead.item ~= canon then
          state:drop(row)
          local message = string.format("item code %s for %s is also on an earlier row (row %d), with other "
            .. "details: one classification per item code and country", body.item.itemCode,
            body.countryOfDestination, first)
          out.conflicts[row] = message
          out.problems[#out.problems + 1] = { row = row, message = message, item = item }
        end
      end
    end
  end
  return out
end

-- ---------------------------------------------------------------- run

--- Runs the batch: every row of `source` (as for `plan`, which must have
-- run on the same state) is classified, or taken from the journal, and
-- handed to `sink(row, item, result)` in input order.
-- @param client the `avalara.Client`
-- @tparam function source as for `plan`
-- @tparam function sink `(row, item, result)`: result is a model, an error, or
-- (for a row that was not valid) an error of kind `api` with `invalid = true`
-- @tparam table opts `{state, conflicts, concurrency, wait, timeout, interval, rate, window, country,
-- item_group, on_progress(done, total, row, result), should_stop() -> nil | "stop" | "abort",
-- describe (an `avalara.descriptions` cache to fill), total}`
-- @treturn table summary `{total, ok, failed, not_attempted, invalid, duplicates, resumed, creates,
-- requests, stopped ("quota", "auth" or "interrupted"), reason (the error that stopped it), written}`
function M.run(client, source, sink, opts)
  local state = opts.state or journal.memory()
  local policy = client.retries
  local concurrency = math.max(1, math.floor(opts.concurrency or client.concurrency))
  local wait = opts.wait ~= false
  local timeout, interval0 = opts.timeout or 120, opts.interval or 0.25
  local window_size = opts.window or math.max(512, 16 * concurrency)
  local conflicts = opts.conflicts or {}
  local describe = opts.describe
  local company = client.company_id
  local create_url = client.api_base .. paths.build("classification_create", { companyId = company })

  local driver = multi.new(client, { concurrency = concurrency })
  local iter = source()
  local window, next_row, next_out, exhausted = {}, 1, 1, false
  -- `urgent`: items further along (polls and retries due, renewed or
  -- rate-limited requests, lookups); they go before new items in `ready`.
  local ready, urgent, timers = fifo(), fifo(), heap()
  local inflight, n_inflight = {}, 0
  local limit, successes, cut_at, gate = concurrency, 0, -math.huge, 0
  local pace_at, spacing = 0, opts.rate and 1 / opts.rate or 0
  local token, halted, stop = nil, nil, nil
  local describing = {}
  local last_commit = now()
  local s = { total = opts.total or 0, ok = 0, failed = 0, not_attempted = 0, invalid = 0, duplicates = 0,
    resumed = 0, creates = 0, requests = 0, written = 0 }
  local finished_count = 0

  -- Hands the finished rows at the head of the window to the sink, in
  -- order. `interrupted`: a row created but not finished goes as it is
  -- (PENDING, with its id); the first row not even created ends it.
  local function flush(interrupted)
    while true do
      local rec = window[next_out]
      if not rec then break end
      if interrupted and not rec.finished and rec.model then
        rec.finished, rec.result = true, rec.model
      end
      if interrupted then rec.waiting = nil end
      if not rec.finished or rec.waiting then break end
      sink(rec.row, rec.item, rec.result)
      s.written = s.written + 1
      window[next_out] = nil
      next_out = next_out + 1
    end
  end

  local finish, fail

  -- Looks the code's description up (once per country and code) before the row is written.
  local function describe_later(rec)
    local result = rec.result
    if not describe or core.is_error(result) or type(result.hsCode) ~= "string" then return end
    local country = result.countryOfDestination or rec.body.countryOfDestination
    if not describe:unknown(country, result.hsCode) then return end
    local k = country .. "\0" .. result.hsCode
    local lookup = describing[k]
    if not lookup then
      lookup = { step = "describe", country = country, code = result.hsCode, waiters = {}, attempts = 0 }
      describing[k] = lookup
      urgent.front(lookup)
    end
    rec.waiting = true
    lookup.waiters[#lookup.waiters + 1] = rec
  end

  function finish(rec, result, how)
    rec.finished, rec.result = true, result
    -- every row that was created has its id, failed or not
    if rec.created and core.is_error(result) and result.id == nil then result.id = rec.id end
    if how ~= "journal" and how ~= "not attempted" and rec.body then
      state:done(rec.row, journal.encode_result(result))
    end
    if how == "journal" then s.resumed = s.resumed + 1 end
    if how == "not attempted" then s.not_attempted = s.not_attempted + 1
    elseif how == "invalid" then s.invalid = s.invalid + 1
    elseif core.is_error(result) then s.failed = s.failed + 1
    else s.ok = s.ok + 1 end
    finished_count = finished_count + 1
    if opts.on_progress then opts.on_progress(finished_count, s.total, rec.row, result) end
    if how ~= "not attempted" and how ~= "invalid" then describe_later(rec) end
    for _, dup in ipairs(rec.dups or {}) do
      s.duplicates = s.duplicates + 1
      finish(dup, result, how == "journal" and "dup" or how)
    end
    rec.dups = nil
  end

  local function halt(reason, err)
    if halted then return end
    halted, s.stopped, s.reason = err, reason, err
  end

  -- A row taken from the source: what it needs next.
  local function admit(row, item, problem)
    local rec = { row = row, item = item, attempts = 0 }
    window[row] = rec
    next_row = row + 1
    if s.total < row then s.total = row end
    problem = problem or conflicts[row]
    local body
    if not problem then body, problem = prepare(client, item, opts) end
    if problem then
      return finish(rec, core.error { kind = "api", message = problem, invalid = true, retryable = false }, "invalid")
    end
    rec.body, rec.id = body, M.id_of(body)
    local have = state:get(row)
    if have and have.state == "done" then
      local result = journal.decode_result(have.result)
      local again = core.is_error(result) and (result.retryable or result.kind == "timeout")
        or (wait and type(result) == "table" and result.status == "PENDING")
      if not again then return finish(rec, result, "journal") end
      rec.step = "lookup"
    end
    local first = have and have.dup_of
    if first then
      local lead = window[first]
      if lead and not lead.finished then
        lead.dups = lead.dups or {}
        lead.dups[#lead.dups + 1] = rec
        return
      end
      local done = state:peek(first)
      if done and done.state == "done" then
        s.duplicates = s.duplicates + 1
        return finish(rec, journal.decode_result(done.result), "dup")
      end
    end
    if halted then return finish(rec, not_attempted(halted), "not attempted") end
    if not rec.step then
      rec.step = (have and (have.state == "sent" or have.state == "created")) and "lookup" or "create"
    end
    ready.push(rec)
  end

  local function pull()
    while not exhausted and not stop and next_row - next_out < window_size do
      local row, item, problem = iter()
      if row == nil then exhausted = true; break end
      admit(row, item, problem)
    end
  end

  local function schedule(rec, at)
    timers.push(at, rec)
  end

  local function ensure_token()
    if token then return true end
    local tok, err = client:token()
    if not tok then halt("auth", err); return false end
    token = tok:access_token()
    return true
  end

  local function request_of(rec)
    if rec.step == "create" then return { method = "POST", url = create_url, body = rec.body } end
    if rec.step == "describe" then
      return { method = "GET", url = client.api_base .. paths.build("definitions_hierarchy",
        { country = rec.country, hsCode = rec.code }) }
    end
    return { method = "GET", url = client.api_base .. paths.build("classification_get",
      { companyId = company, id = rec.id }) }
  end

  local function send(rec)
    local req = request_of(rec)
    req.token = token
    local h = driver:add(req)
    inflight[h] = { rec = rec, started = now(), token = token, method = req.method, url = req.url, step = rec.step }
    n_inflight = n_inflight + 1
    s.requests = s.requests + 1
    if rec.step == "create" then s.creates = s.creates + 1 end
  end

  -- Marks `rec` and the creates queued after it (up to `group` in all) as
  -- sent, durably, in one commit (one fsync): the group's creates then go
  -- out one by one as slots free up, with no fsync each. A reserved create
  -- that never went out costs a lookup (a GET) on resume, never a create.
  local group = 2 * concurrency
  local function reserve(rec)
    local n = 0
    local function mark(r)
      if r.step == "create" and not r.reserved then
        state:sent(r.row)
        r.reserved = true
        n = n + 1
      end
    end
    mark(rec)
    for _, q in ipairs { urgent, ready } do
      for i = q.head, q.tail do
        if n >= group then break end
        mark(q[i])
      end
    end
    state:commit()
    last_commit = now()
  end

  local function launch()
    if stop then return end
    local t = now()
    if t < gate then return end
    while n_inflight < limit and not (urgent.empty() and ready.empty()) do
      if spacing > 0 and pace_at > t then break end
      local rec = urgent.pop() or ready.pop()
      if halted and (rec.step == "create" or s.stopped == "auth") then
        if rec.reserved then state:reset(rec.row); rec.reserved = nil end
        if rec.step == "describe" then fail(rec, halted) else finish(rec, not_attempted(halted), "not attempted") end
      elseif ensure_token() then
        if spacing > 0 then pace_at = math.max(pace_at, t) + spacing end
        -- Durable before it goes: a create sent is never sent again.
        if rec.step == "create" and not rec.reserved then reserve(rec) end
        if rec.step == "create" then rec.reserved = nil end
        send(rec)
      else
        urgent.front(rec) -- no token: the batch stops (auth); the next turn says so for each row
        break
      end
    end
  end

  local function success_tick()
    successes = successes + 1
    if limit < concurrency and successes >= limit then
      limit, successes = limit + 1, 0
    end
  end

  function fail(rec, err)
    if rec.step == "describe" then
      describe:learn(rec.country, rec.code, nil, err)
      for _, w in ipairs(rec.waiters) do w.waiting = nil end
      describing[rec.country .. "\0" .. rec.code] = nil
      return
    end
    finish(rec, err)
  end

  local function polled(rec, model)
    rec.poll_deadline = rec.poll_deadline or now() + timeout
    rec.interval = rec.interval or interval0
    rec.step = "poll"
    rec.model = model
    local t = now()
    if t >= rec.poll_deadline then
      return finish(rec, core.error { kind = "timeout", retryable = true, message = string.format(
        "classification %s still PENDING after %g s", tostring(model.id or rec.id), timeout) })
    end
    if stop then return end
    -- The last poll is at the deadline itself.
    schedule(rec, math.min(t + rec.interval, rec.poll_deadline))
    rec.interval = math.min(rec.interval * 1.5, 5)
  end

  local function on_error(f, rec, err)
    local t = now()
    if err.needs_refresh then
      rec.renewals = (rec.renewals or 0) + 1
      if rec.renewals > 2 then return fail(rec, err) end
      if f.token == token then
        -- Every other worker waits while this renewal runs (it blocks here).
        token = nil
        local tok, terr = client:token(f.token)
        if not tok then
          halt("auth", terr)
          return finish(rec, not_attempted(terr), "not attempted")
        end
        token = tok:access_token()
      end
      return urgent.front(rec)
    end
    if f.step == "create" and err.kind == "quota" then
      state:reset(rec.row)
      halt("quota", err)
      return finish(rec, not_attempted(err), "not attempted")
    end
    if f.step == "lookup" and err.status == 404 then
      rec.step = "create"
      return urgent.front(rec)
    end
    if err.status == 429 then
      local ra = tonumber(err.retry_after) or 1
      if ra > policy.deadline then return fail(rec, beyond_deadline(err, ra, policy.deadline)) end
      if t - cut_at > ra then
        limit, successes, cut_at = math.max(1, math.floor(limit / 2)), 0, t
      end
      gate = math.max(gate, t + ra)
      return urgent.front(rec)
    end
    if retry.retryable(err) then
      rec.attempts = rec.attempts + 1
      rec.since = rec.since or f.started
      local delay = retry.delay(policy, rec.attempts, err)
      if rec.attempts < policy.max_attempts and t - rec.since + delay <= policy.deadline then
        return schedule(rec, t + delay)
      end
      err.retryable = true
      local ra = tonumber(err.retry_after)
      if ra and rec.attempts < policy.max_attempts then err = beyond_deadline(err, ra, policy.deadline) end
    end
    return fail(rec, err)
  end

  local function on_done(c)
    local f = inflight[c.handle]
    if not f then return end
    inflight[c.handle] = nil
    n_inflight = n_inflight - 1
    local rec = f.rec
    client:_hook(f.method, f.url, c.status, f.started, rec.attempts + 1, c.err)
    if c.err then return on_error(f, rec, c.err) end
    success_tick()
    rec.attempts, rec.since = 0, nil
    local body = c.body
    if f.step == "describe" then
      describe:learn(rec.country, rec.code, body)
      for _, w in ipairs(rec.waiters) do w.waiting = nil end
      describing[rec.country .. "\0" .. rec.code] = nil
      return
    end
    if f.step == "create" then state:created(rec.row); rec.created = true end
    if f.step == "lookup" then
      if not same_item(body, rec.body) then
        rec.step = "create"
        return urgent.front(rec)
      end
      state:created(rec.row)
      rec.created = true
    end
    if type(body) ~= "table" then
      return finish(rec, core.error { kind = "parse", status = c.status, message = "the answer has no body",
        retryable = true })
    end
    if wait and body.status == "PENDING" then return polled(rec, body) end
    finish(rec, body)
  end

  local aborted = false
  while true do
    local order = opts.should_stop and opts.should_stop()
    if order == "abort" then
      stop, aborted = "interrupted", true
      break
    elseif order and not stop then
      stop = "interrupted"
    end
    pull()
    while timers.n > 0 and timers.peek() <= now() do urgent.push(timers.pop()) end
    launch()
    flush()
    if n_inflight == 0 and (stop or (exhausted and ready.empty() and urgent.empty() and timers.n == 0)) then
      break
    end
    local t = now()
    local wake = math.huge
    if timers.n > 0 then wake = math.min(wake, timers.peek()) end
    if not (ready.empty() and urgent.empty()) and n_inflight < limit then
      wake = math.min(wake, math.max(gate, pace_at))
    end
    local span = math.max(0, math.min(wake - t, 0.2))
    -- rows to take at once (the window has room): no waiting
    if not stop and not exhausted and next_row - next_out < window_size then span = 0 end
    if n_inflight > 0 then
      for _, c in ipairs(driver:poll(span)) do on_done(c) end
    elseif span > 0 then
      client.sleep(span)
    end
    if now() - last_commit >= 1 then
      state:commit()
      last_commit = now()
    end
  end
  if aborted then driver:close() end
  flush()
  if stop then
    s.stopped = s.stopped or stop
    s.interrupted = true
    flush(true)
  end
  state:commit()
  if not aborted then driver:close() end
  return s
end

-- ---------------------------------------------------------------- classify

--- `client:classify_batch(items, opts)`: classifies every item (see the
-- module's description), results aligned with `items`.
-- Every item is checked first (an invalid one raises naming its index and
-- field), and two items with one item code and country but other details
-- raise too, before any request. A journal that cannot be used (another
-- batch's, or locked) returns nil, message.
-- @param client the `avalara.Client`
-- @tparam table items
-- @tparam[opt] table opts `{concurrency, wait = true, country, item_group, timeout = 120,
-- interval = 0.25, on_progress, journal = path, restart, rate, window, should_stop}`
-- @return results (each a model or an error; nil for a row an interrupt left unfinished), summary;
-- or nil, message
function M.classify(client, items, opts)
  local where = "client:classify_batch"
  if type(items) ~= "table" then error(where .. ": 'items' must be a table", 3) end
  opts = opts or {}
  check_options(opts, where)
  client:company(where)
  for i = 1, #items do
    item_model.body(items[i], { company_id = client.company_id, country = opts.country,
      item_group = opts.item_group, where = where .. ": items[" .. i .. "]" })
  end
  local source = function()
    local i = 0
    return function()
      i = i + 1
      if items[i] == nil then return nil end
      return i, items[i]
    end
  end
  local state = opts.state
  if opts.journal then
    local err
    state, err = journal.open(opts.journal, { company = client.company_id, api_base = client.api_base },
      { restart = opts.restart })
    if not state then return nil, err end
  end
  state = state or journal.memory()
  local plan = M.plan(client, state, source, opts)
  if plan.mismatch then
    state:close()
    return nil, "the journal " .. tostring(opts.journal) .. " belongs to another batch: " .. plan.mismatch
  end
  if #plan.problems > 0 then
    state:rollback()
    state:close()
    local p = plan.problems[1]
    error(where .. ": items[" .. p.row .. "]: " .. p.message, 2)
  end
  state:commit()
  local results = {}
  local run_opts = {}
  for k, v in pairs(opts) do run_opts[k] = v end
  run_opts.state, run_opts.total, run_opts.journal, run_opts.restart = state, #items, nil, nil
  local ok, summary = pcall(M.run, client, source, function(row, _, result) results[row] = result end, run_opts)
  state:close()
  if not ok then error(summary, 0) end
  summary.total = #items
  return results, summary
end

return M
