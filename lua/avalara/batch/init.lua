--- Batches of classifications at catalog scale (issue 16): a per-item
-- streaming pipeline over a journal, so that nothing is lost and nothing is
-- paid twice.
--
--    local results, summary = client.batch:classify(items, { journal = "run.journal", rate = 50 })
--
-- The service is reached as `client.batch` (`M.field`); `client:classify_batch`
-- is its flat alias (`M.aliases`). `client.batch:classify` takes a list;
-- the `hscode batch` command uses `client.batch:plan` and `client.batch:run`
-- with its own streaming source and sink. The module functions
-- (`batch.classify(client, items, opts)`, `batch.plan`, `batch.run`) are the
-- same with the client first.
--
-- **Per item.** Each item goes through its own steps: its create, then its
-- polls as soon as the create returns, while the next items flow in; at most
-- `concurrency` requests are in flight (on the core's multi handle, see
-- `avalara.transport.driver`). Items are taken from the source as the requests
-- go out, 3 × concurrency ahead of them (the first creates do not wait for a
-- whole window's admission), and only while fewer than a
-- window of them (`window`, default 16 × concurrency, at least 512) wait to
-- be written, and results go to the sink in input order as soon as every
-- earlier one is there: memory is bounded by the window, not by the catalog.
--
-- **Journal.** Every row is recorded (`avalara.batch.journal`): queued, create
-- sent (committed to disk before the create goes out), created, done with its
-- model or error. A later run with the same journal takes the finished rows
-- from it, looks up by id (a GET) the rows whose create was sent but whose
-- answer was lost, polls the created ones, and creates only the rest. Rows
-- that failed for a reason worth another try (a 5xx, a timeout) are tried
-- again; a refusal (422) is kept. The journal of an earlier run of another
-- input (a nightly catalog, a few rows edited) is taken as it is meant: a
-- row whose item code and country it has with the same details comes from
-- it, an edited row is classified again (and only it), a new row is
-- classified, a row no longer in the input is dropped (`summary.unchanged`,
-- `changed`, `new`, `removed`); a journal of another company, service or
-- default country or item group is refused.
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
--
-- **Errors.** `classify` returns `nil, err` (`avalara.core.error`) when its
-- journal cannot be used (kind `store`: see `avalara.batch.journal.open`) or
-- belongs to another batch (kind `input`, with `path`), or when the journal
-- fails during the run (kind `store`). Programming errors raise naming the
-- argument: `items` not a table, an unknown option or one of the wrong type,
-- and an item that is not valid or conflicts with an earlier one (its index
-- and field named), before any request, as `client:classify` does. Each row's
-- result is a model or an error; a row that is not valid (`run`'s source)
-- gets an error of kind `input` with `invalid = true` and its `row`.
--
-- The pipeline is in `avalara.batch.pipeline` (named steps over a state
-- table), `avalara.batch.answers` and `avalara.batch.window`; the planning
-- pass in `avalara.batch.plan`; the row states in `avalara.batch.journal`.
-- @module avalara.batch
local core = require "avalara.core"
local item_model = require "avalara.hs.item"
local journal = require "avalara.batch.journal"
local plan = require "avalara.batch.plan"
local pipeline = require "avalara.batch.pipeline"

local M = {}

--- The client field the service is reached by: `client.batch`.
M.field = "batch"

--- Today's flat names on the client -> the service's methods.
M.aliases = { classify_batch = "classify" }

--- What is sent for an item, as text in a fixed order (`avalara.batch.plan.canonical`).
-- @function canonical
M.canonical = plan.canonical

--- The classification id of a create body (`avalara.batch.plan.id_of`).
-- @function id_of
M.id_of = plan.id_of

-- ---------------------------------------------------------------- options

local OPTIONS = { concurrency = "number", wait = "boolean", country = "string", item_group = "string",
  timeout = "number", interval = "number", on_progress = "function", journal = "string", restart = "boolean",
  rate = "number", window = "number", should_stop = "function", describe = "table", total = "number",
  state = "table" }

local function is_callable(f)
  if type(f) == "function" then return true end
  local mt = getmetatable(f)
  return mt ~= nil and type(mt) == "table" and mt.__call ~= nil
end

local function check_options(where, opts)
  if type(opts) ~= "table" then error(where .. ": 'opts' must be a table", 4) end
  for k, v in pairs(opts) do
    local want = OPTIONS[k]
    if not want then error(where .. ": unknown option '" .. tostring(k) .. "'", 4) end
    local ok = want == "function" and is_callable(v) or type(v) == want
    if not ok then error(where .. ": '" .. k .. "' must be a " .. want, 4) end
    if want == "number" and k ~= "total" and v <= 0 then error(where .. ": '" .. k .. "' must be positive", 4) end
  end
end

-- ---------------------------------------------------------------- plan and run

-- The arguments of plan and run: a source, a sink (run's: `sink` is not
-- false), options (a table, or nil for none).
local function check_args(where, source, sink, opts)
  if not is_callable(source) then error(where .. ": 'source' must be a function", 4) end
  if sink ~= false and not is_callable(sink) then error(where .. ": 'sink' must be a function", 4) end
  if opts ~= nil and type(opts) ~= "table" then error(where .. ": 'opts' must be a table", 4) end
  return opts or {}
end

--- Records every row of `source` in `state` and checks it, before any
-- request (`avalara.batch.plan.plan`).
-- @param client the `avalara.Client`
-- @tparam table state a journal (`avalara.batch.journal`)
-- @tparam function source returns an iterator of `row, item, problem[, body]` (problem: a
-- message for a row that is not valid, which is skipped; body: the item's create body when the
-- source has built it already, with the batch's options, as `avalara.batch.plan.body` would)
-- @tparam table opts `{country, item_group, where_of, count, wait}` (as `avalara.batch.plan.plan`)
-- @treturn table `{rows = n, problems = {{row, message, item, first?}...}, conflicts = {[row] = message},
-- done = n (finished in the journal), journal, unchanged, changed, new, removed, duplicates, ...}`
-- (as `avalara.batch.plan.plan`)
function M.plan(client, state, source, opts)
  return plan.plan(client, state, source, check_args("batch.plan", source, false, opts))
end

--- Runs the batch: every row of `source` (as for `plan`, which must have
-- run on the same state) is classified, or taken from the journal, and
-- handed to `sink(row, item, result)` in input order.
-- @param client the `avalara.Client`
-- @tparam function source as for `plan`
-- @tparam function sink `(row, item, result)`: result is a model, an error, or
-- (for a row that was not valid) an error of kind `input` with `invalid = true`
-- @tparam table opts `{state, conflicts, concurrency, wait, timeout, interval, rate, window, country,
-- item_group, on_progress(done, total, row, result), should_stop() -> nil | "stop" | "abort",
-- describe (an `avalara.descriptions` cache to fill), total}`
-- @treturn table summary `{total, ok, failed, not_attempted, invalid, duplicates, resumed, creates,
-- requests, stopped ("quota", "auth" or "interrupted"), reason (the error that stopped it), written}`
function M.run(client, source, sink, opts)
  return pipeline.run(client, source, sink, check_args("batch.run", source, sink, opts))
end

-- ---------------------------------------------------------------- classify

-- `list` as a source: row i is items[i], with its create body bodies[i] (built
-- once, by the checks before any request); the planning pass reads them, the
-- run (the second pass) lets each go once taken.
local function list_source(items, bodies)
  local passes = 0
  return function()
    local i = 0
    passes = passes + 1
    local keep = passes == 1
    return function()
      i = i + 1
      if items[i] == nil then return nil end
      local body = bodies[i]
      if not keep then bodies[i] = nil end
      return i, items[i], nil, body
    end
  end
end

-- What a batch that raised returns: the journal failed (a full disk: kind
-- `store`), nil, err; anything else (Ctrl-C's "interrupted!", a hook's error,
-- a bug) goes on up.
local function failed(e)
  if core.is_error(e) and e.kind == "store" then return nil, e end
  error(e, 0)
end

local function classify(where, client, items, opts)
  if type(items) ~= "table" then error(where .. ": 'items' must be a table", 3) end
  opts = opts or {}
  check_options(where, opts)
  client:company(where)
  local bodies = {}
  -- one options table for every item: `index` names the item in a message (made only then)
  local body_opts = { company_id = client.company_id, country = opts.country, item_group = opts.item_group,
    where = where }
  for i = 1, #items do
    body_opts.index = i
    bodies[i] = item_model.body(items[i], body_opts)
  end
  local source = list_source(items, bodies)
  local state = opts.state
  if opts.journal then
    local err
    state, err = journal.open(opts.journal, { company = client.company_id, api_base = client.api_base,
      country = opts.country or "", item_group = opts.item_group or "" }, { restart = opts.restart })
    if not state then return nil, err end
  end
  state = state or journal.memory()
  local ok, planned = pcall(function()
    local p = plan.plan(client, state, source, opts)
    if #p.problems == 0 then state:commit() end
    return p
  end)
  if not ok then
    pcall(state.rollback, state) -- the journal as it was
    state:close()
    return failed(planned)
  end
  if #planned.problems > 0 then
    state:rollback()
    state:close()
    local p = planned.problems[1]
    error(where .. ": items[" .. p.row .. "]: " .. p.message, 3)
  end
  local results = {}
  local run_opts = {}
  for k, v in pairs(opts) do run_opts[k] = v end
  run_opts.state, run_opts.total, run_opts.journal, run_opts.restart = state, #items, nil, nil
  local summary
  ok, summary = pcall(pipeline.run, client, source, function(row, _, r) results[row] = r end, run_opts)
  state:close()
  if not ok then return failed(summary) end
  summary.total = #items
  for _, k in ipairs { "unchanged", "changed", "new", "removed" } do summary[k] = planned[k] end
  return results, summary
end

--- Classifies every item of a list (see the module's description), results
-- aligned with `items`. Every item is checked first: one that is not valid,
-- or has the item code and country of an earlier one with other details,
-- raises naming its index (and field), before any request.
-- @param client the `avalara.Client`
-- @tparam table items
-- @tparam[opt] table opts `{concurrency, wait = true, country, item_group, timeout = 120,
-- interval = 0.25, on_progress, journal = path, restart, rate, window, should_stop}`
-- @return results (each a model or an error; nil for a row an interrupt left unfinished), summary
-- (with `unchanged`, `changed`, `new`, `removed`: the rows against the journal of an earlier run);
-- or nil, err when the journal cannot be used (kind `store` or `input`) or fails (kind `store`)
function M.classify(client, items, opts)
  return classify("client:classify_batch", client, items, opts)
end

-- ---------------------------------------------------------------- the service

local Service = {}
Service.__index = Service

--- The service object of `client` (`client.batch`).
-- @param client the `avalara.Client`
-- @treturn table the service
function M.new(client)
  if type(client) ~= "table" then error("batch.new: 'client' must be a client", 2) end
  return setmetatable({ client = client }, Service)
end

--- `client.batch:classify(items, opts)`: as `batch.classify`.
function Service:classify(items, opts)
  return classify("client:classify_batch", self.client, items, opts)
end

--- `client.batch:plan(state, source, opts)`: as `batch.plan`.
function Service:plan(state, source, opts)
  return plan.plan(self.client, state, source, check_args("client.batch:plan", source, false, opts))
end

--- `client.batch:run(source, sink, opts)`: as `batch.run`.
function Service:run(source, sink, opts)
  return pipeline.run(self.client, source, sink, check_args("client.batch:run", source, sink, opts))
end

Service.__tostring = function() return "avalara.batch service" end

return M
