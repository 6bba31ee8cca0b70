--- The batch pipeline: named steps over one state table (`run`'s `st`).
--
-- Each row goes through its own steps (`rec.step`): `create`, then `poll`
-- until its model is final, or `lookup` (a GET by id) when the journal says
-- its create was sent but its answer was lost; a `describe` step looks a
-- code's description up once per country and code. The loop (`turn`) takes
-- rows from the source while the window has room (`pull` → `admit`), moves the
-- timed steps that are due to the front (`due`), sends what the limits allow
-- (`launch` → `reserve` → `send`), hands the finished rows to the sink in
-- input order (`flush`), then waits on the driver (`wait_for`) and settles
-- each answer (`on_done` → `on_error`, `polled`, `finish`).
--
-- The steps are module functions over the state table, so each is named in a
-- stack trace and none closes over another: this module takes rows in and
-- sends requests; `avalara.batch.answers` settles the answers;
-- `avalara.batch.window` finishes rows and writes them in order. See
-- `avalara.batch` for what the whole guarantees (journal, rate, quota, duplicates).
-- @module avalara.batch.pipeline
local clock = require "avalara.clock"
local paths = require "avalara.paths"
local driver = require "avalara.transport.driver"
local journal = require "avalara.batch.journal"
local plan = require "avalara.batch.plan"
local queue = require "avalara.batch.queue"
local result = require "avalara.batch.result"
local window = require "avalara.batch.window"
local answers = require "avalara.batch.answers"

local now = clock.now

local M = {}

-- ---------------------------------------------------------------- the state

--- The state of one run: the options, the queues and the counters.
-- @param client the `avalara.Client`
-- @tparam function source as for `avalara.batch.plan.plan`
-- @tparam function sink `(row, item, result)`
-- @tparam table opts as for `avalara.batch.run`
-- @treturn table the state (`st`)
function M.start(client, source, sink, opts)
  local concurrency = math.max(1, math.floor(opts.concurrency or client.concurrency))
  local st = {
    client = client, sink = sink, opts = opts,
    state = opts.state or journal.memory(),
    policy = client.retries,
    concurrency = concurrency,
    wait = opts.wait ~= false,
    timeout = opts.timeout or 120, interval = opts.interval or 0.25,
    -- a poll's read is clipped to the row's poll deadline (`send`)
    read_timeout = client:transport_info().options.timeout or 30,
    window_size = opts.window or math.max(512, 16 * concurrency),
    conflicts = opts.conflicts or {},
    describe = opts.describe,
    company = client.company_id,
    create_url = client.api_base .. paths.build("classification_create", { companyId = client.company_id }),
    driver = driver.new(client, { concurrency = concurrency }),
    rows = source(),
    -- rows taken and not yet written, by row; the next row to take, to write
    window = {}, next_row = 1, next_out = 1, exhausted = false,
    -- `urgent`: steps further along (polls and retries due, renewed or
    -- rate-limited requests, lookups); they go before new rows in `ready`.
    ready = queue.fifo(), urgent = queue.fifo(), timers = queue.heap(),
    inflight = {}, n_inflight = 0,
    -- requests in flight allowed now (halved on 429), successes since, when it was cut,
    -- no request before `gate` (Retry-After)
    limit = concurrency, successes = 0, cut_at = -math.huge, gate = 0,
    pace_at = 0, spacing = opts.rate and 1 / opts.rate or 0,
    -- creates marked sent in one commit
    group = 2 * concurrency,
    -- rows admitted ahead of the sending (`pull`): a group and a round more; the rest of the window is taken
    -- as slots free up, so the first requests go out without waiting for the whole window's admission
    ahead = 3 * concurrency,
    token = nil, halted = nil, stop = nil, aborted = false,
    describing = {},
    last_commit = now(),
    finished = 0,
    -- until then a lookup's 404 for a create an earlier run sent is not trusted (`answers.on_error`)
    settle_at = nil,
    summary = { total = opts.total or 0, ok = 0, failed = 0, not_attempted = 0, invalid = 0, duplicates = 0,
      resumed = 0, creates = 0, requests = 0, written = 0 },
  }
  -- A create the earlier run sent just before it was killed may still be under way at the service (not
  -- found yet); that run would have sent it again itself after its read timeout. Commits are at most a
  -- second apart: it was sent by its last commit + 1 s.
  local last = st.state:last_commit()
  -- (a last commit in the future, the clock set back since, waits no longer than one just made)
  if last then st.settle_at = math.min(last, now()) + 1 + st.read_timeout end
  return st
end

local finish, fail, flush = window.finish, window.fail, window.flush

-- ---------------------------------------------------------------- input

--- A row taken from the source: finished at once (invalid, from the journal,
-- a duplicate of a finished row, the batch halted) or queued for its first step.
-- `built`: its create body when the source has it already (`classify` builds each once).
function M.admit(st, row, item, problem, built)
  local s = st.summary
  local rec = { row = row, item = item, attempts = 0 }
  st.window[row] = rec
  st.next_row = row + 1
  if s.total < row then s.total = row end
  problem = problem or st.conflicts[row]
  local body = not problem and built or nil
  if not problem and not body then body, problem = plan.body(st.company, item, st.opts) end
  if problem then return finish(st, rec, result.invalid(row, problem), "invalid") end
  rec.body, rec.id = body, plan.id_of(body)
  local have = st.state:get(row)
  if have and have.state == "done" then
    local r = result.decode(have.result)
    if not result.again(r, st.wait) then return finish(st, rec, r, "journal") end
    rec.step = "lookup"
  end
  local first = have and have.dup_of
  if first then
    local lead = st.window[first]
    if lead and not lead.finished then
      lead.dups = lead.dups or {}
      lead.dups[#lead.dups + 1] = rec
      return
    end
    local done = st.state:peek(first)
    if done and done.state == "done" then
      s.duplicates = s.duplicates + 1
      return finish(st, rec, result.decode(done.result), "dup")
    end
  end
  if st.halted then return finish(st, rec, result.not_attempted(st.halted), "not attempted") end
  if not rec.step then
    rec.step = (have and (have.state == "sent" or have.state == "created")) and "lookup" or "create"
    -- sent by an earlier run, its answer lost: maybe still under way at the service
    rec.unsure = have and have.state == "sent" or nil
  end
  st.ready:push(rec)
end

--- Whether `pull` would take rows now: the window has room and fewer than
-- `ahead` rows wait to be sent.
function M.hungry(st)
  return not st.exhausted and not st.stop and st.next_row - st.next_out < st.window_size
    and st.ready:size() < st.ahead
end

--- Takes rows from the source while the window has room, up to `ahead`
-- rows waiting to be sent.
function M.pull(st)
  while M.hungry(st) do
    local row, item, problem, built = st.rows()
    if row == nil then st.exhausted = true; break end
    M.admit(st, row, item, problem, built)
  end
end

--- Moves the timed steps that are due to the urgent queue.
function M.due(st)
  local timers = st.timers
  while timers.n > 0 and timers:peek() <= now() do st.urgent:push(timers:pop()) end
end

-- ---------------------------------------------------------------- sending

--- An access token for the next requests; false (and the batch halted) when none can be had.
function M.ensure_token(st)
  if st.token then return true end
  local tok, err = st.client:token()
  if not tok then answers.halt(st, "auth", err); return false end
  st.token = tok:access_token()
  return true
end

--- The request of a row's step.
function M.request_of(st, rec)
  local base = st.client.api_base
  if rec.step == "create" then return { method = "POST", url = st.create_url, body = rec.body } end
  if rec.step == "describe" then
    return { method = "GET", url = base .. paths.build("definitions_hierarchy",
      { country = rec.country, hsCode = rec.code }) }
  end
  return { method = "GET", url = base .. paths.build("classification_get", { companyId = st.company, id = rec.id }) }
end

--- Sends a row's step on the driver.
function M.send(st, rec)
  local s = st.summary
  local req = M.request_of(st, rec)
  req.token = st.token
  if rec.step == "poll" and rec.poll_deadline then
    -- the timeout bounds the wait, a stalled read included: its own timeout is the time left
    local left = math.max(rec.poll_deadline - now(), 0.001)
    if left < st.read_timeout then req.timeout = left end
  end
  local h = st.driver:add(req)
  st.inflight[h] = { rec = rec, started = now(), token = st.token, method = req.method, url = req.url,
    step = rec.step }
  st.n_inflight = st.n_inflight + 1
  s.requests = s.requests + 1
  if rec.step == "create" then s.creates = s.creates + 1 end
end

--- Marks `rec` and the creates queued after it (up to `group` in all) as
-- sent, durably, in one commit (one fsync): the group's creates then go
-- out one by one as slots free up, with no fsync each. A reserved create
-- that never went out costs a lookup (a GET) on resume, never a create.
function M.reserve(st, rec)
  local n = 0
  local function mark(r)
    if r.step == "create" and not r.reserved then
      st.state:sent(r.row)
      r.reserved = true
      n = n + 1
    end
  end
  mark(rec)
  for _, q in ipairs { st.urgent, st.ready } do
    for i = q.head, q.tail do
      if n >= st.group then break end
      mark(q[i])
    end
  end
  st.state:commit()
  st.last_commit = now()
end

--- Sends what the limits allow (requests in flight, rate, Retry-After); after
-- a halt, the creates left are finished as not attempted instead.
function M.launch(st)
  if st.stop then return end
  local t = now()
  if t < st.gate then return end
  while st.n_inflight < st.limit and not (st.urgent:empty() and st.ready:empty()) do
    if st.spacing > 0 and st.pace_at > t then break end
    local rec = st.urgent:pop() or st.ready:pop()
    if st.halted and (rec.step == "create" or st.summary.stopped == "auth") then
      if rec.reserved then st.state:reset(rec.row); rec.reserved = nil end
      if rec.step == "describe" then fail(st, rec, st.halted)
      else finish(st, rec, result.not_attempted(st.halted), "not attempted") end
    elseif M.ensure_token(st) then
      if st.spacing > 0 then st.pace_at = math.max(st.pace_at, t) + st.spacing end
      -- Durable before it goes: a create sent is never sent again.
      if rec.step == "create" and not rec.reserved then M.reserve(st, rec) end
      if rec.step == "create" then rec.reserved = nil end
      M.send(st, rec)
    else
      st.urgent:front(rec) -- no token: the batch stops (auth); the next turn says so for each row
      break
    end
  end
end

-- ---------------------------------------------------------------- the loop

--- How long the loop may wait now (seconds, at most 0.2).
function M.span(st)
  local t = now()
  local wake = math.huge
  if st.timers.n > 0 then wake = math.min(wake, st.timers:peek()) end
  if not (st.ready:empty() and st.urgent:empty()) and st.n_inflight < st.limit then
    wake = math.min(wake, math.max(st.gate, st.pace_at))
  end
  local span = math.max(0, math.min(wake - t, 0.2))
  -- rows to take at once: no waiting
  if M.hungry(st) then span = 0 end
  return span
end

--- Waits up to `span` seconds for answers and settles them.
function M.wait_for(st, span)
  if st.n_inflight > 0 then
    for _, c in ipairs(st.driver:poll(span)) do answers.on_done(st, c) end
  elseif span > 0 then
    st.client.sleep(span)
  end
  if now() - st.last_commit >= 1 then
    st.state:commit()
    st.last_commit = now()
  end
end

--- Whether every row is settled (or, stopping, nothing is in flight).
function M.idle(st)
  return st.n_inflight == 0 and (st.stop ~= nil or (st.exhausted and st.ready:empty() and st.urgent:empty()
    and st.timers.n == 0))
end

--- Hears the caller's `should_stop`: "stop" finishes what is in flight, "abort" ends at once.
-- @treturn boolean whether to end now
function M.heed(st)
  local order = st.opts.should_stop and st.opts.should_stop()
  if order == "abort" then
    st.stop, st.aborted = "interrupted", true
    return true
  elseif order and not st.stop then
    st.stop = "interrupted"
  end
  return false
end

--- One turn of the loop.
-- @treturn boolean whether the run is over
function M.turn(st)
  if M.heed(st) then return true end
  M.pull(st)
  M.due(st)
  M.launch(st)
  M.pull(st) -- the rows sent replaced while the answers are awaited
  flush(st)
  if M.idle(st) then return true end
  M.wait_for(st, M.span(st))
  return false
end

--- Ends the run: the rows done written, an interrupted run's unfinished
-- ones as they are, the creates marked sent that did not go out queued
-- again (a resume creates them without waiting on a lookup), the state
-- committed, the driver closed.
-- @treturn table the summary
function M.close(st)
  local s = st.summary
  if st.aborted then st.driver:close() end
  for _, q in ipairs { st.urgent, st.ready } do
    for i = q.head, q.tail do
      local rec = q[i]
      if rec and rec.reserved then st.state:reset(rec.row); rec.reserved = nil end
    end
  end
  flush(st)
  if st.stop then
    s.stopped = s.stopped or st.stop
    s.interrupted = true
    flush(st, true)
  end
  st.state:commit()
  if not st.aborted then st.driver:close() end
  return s
end

--- Runs a batch (see `avalara.batch.run`).
-- @treturn table the summary
function M.run(client, source, sink, opts)
  local st = M.start(client, source, sink, opts)
  repeat until M.turn(st)
  return M.close(st)
end

return M
