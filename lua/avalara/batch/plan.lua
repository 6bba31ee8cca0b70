--- The planning pass of a batch: each row of the source made into the body
-- its create sends, recorded in the batch's state (`avalara.batch.journal`)
-- and checked against it before any request.
-- @module avalara.batch.plan
local cjson = require "cjson"
local item_model = require "avalara.hs.item"
local results = require "avalara.batch.result"

local M = {}

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

--- The classification id of a create body: `{companyId}-{itemCode}-{country}`.
-- @tparam table body as `avalara.item.body` builds it
-- @treturn string
function M.id_of(body)
  return body.item.companyId .. "-" .. body.item.itemCode .. "-" .. body.countryOfDestination
end

--- Whether a model read back (by id) is the classification of this body.
-- @param model what the lookup answered
-- @tparam table body the create body
-- @treturn boolean
function M.same_item(model, body)
  local a, b = type(model) == "table" and model.item, body.item
  return type(a) == "table" and a.itemCode == b.itemCode and a.description == b.description
    and (a.summary or false) == (b.summary or false) and (a.itemGroup or b.itemGroup) == b.itemGroup
end

--- The create body of a source item.
-- @param company_id the client's company
-- @param item a source item
-- @tparam table opts `{country, item_group}`
-- @return the body, or nil and what is wrong with the item (a message)
function M.body(company_id, item, opts)
  local ok, body = pcall(item_model.body, item, { company_id = company_id, country = opts.country,
    item_group = opts.item_group, where = "\0" })
  if not ok then
    local message = tostring(body)
    if message:match("interrupted!$") then error(body, 0) end
    local at = message:find("\0: ", 1, true)
    return nil, at and message:sub(at + 3) or message
  end
  return body
end

-- What the run will do with a row recorded in `state` (`st`, its result
-- `res`): "create", "lookup" (a create sent, or a result worth another try)
-- or "resumed" (taken from the journal), as `avalara.batch.pipeline.admit` does.
local function action(st, res, wait)
  if st == "queued" then return "create" end
  if st ~= "done" then return "lookup" end
  return results.again(results.decode(res), wait ~= false) and "lookup" or "resumed"
end

--- Records every row of `source` in `state` (queued, unless the journal has
-- it already) and checks it: two rows with one item code and country but
-- other details conflict (one classification per code and country). Against
-- a journal of an earlier run of another input (a nightly catalog): a row
-- whose item code and country the journal has with the same item keeps its
-- progress ("unchanged": its result, or a create that was sent, looked up),
-- a row whose item differs is queued again ("changed"), a row of a new item
-- code and country is queued ("new"), and what the journal has that the
-- input no longer has is dropped ("removed", counted by item code and
-- country). Rows of the input that have the keys of the journal's rows in
-- the same places cost one read each (an edited one is queued again in its
-- place); from the first row that does not (rows added, removed or moved),
-- the journal's rows are set aside and found by their key. Nothing is committed: the caller
-- commits, or rolls back (and the journal is as it was).
-- @param client the `avalara.Client` (its `company_id`)
-- @tparam table state a journal (`avalara.batch.journal`)
-- @tparam function source returns an iterator of `row, item, problem[, body]` (problem: a
-- message for a row that is not valid, which is skipped; body: its create body, built already with
-- these options, as `M.body` builds it)
-- @tparam table opts `{country, item_group, where_of, count, wait}` (`where_of(row)`: how a conflict names the
-- earlier row, such as "line 166"; "an earlier row (row 165)" without it; `count`: also count what the run
-- would do with each row, and list the first `count` rows it would create)
-- @treturn table `{rows = n, problems = {{row, message, item, first?}...}, conflicts = {[row] = message},
-- done = n (finished in the journal), journal (whether the state had rows before), unchanged, changed,
-- new, removed, duplicates; with `count`: create, lookup, resumed, listed = {{row, code, country, verdict}...}}`
function M.plan(client, state, source, opts)
  local out = { rows = 0, problems = {}, conflicts = {}, done = 0, unchanged = 0, changed = 0, new = 0,
    removed = 0, duplicates = 0, create = 0, lookup = 0, resumed = 0, listed = {} }
  local where_of = opts.where_of or function(row) return "an earlier row (row " .. row .. ")" end
  out.journal = not state:empty()
  local rebased = false
  for row, item, problem, built in source() do
    out.rows = row
    local body
    if not problem then
      body = built
      if not body then body, problem = M.body(client.company_id, item, opts) end
    end
    local have = out.journal and not rebased and state:get(row)
    if problem then
      -- the journal's row here is not in this input (or not valid in it any more)
      if have then state:rebase(row); rebased = true end
      out.problems[#out.problems + 1] = { row = row, message = problem, item = item }
    else
      local key, canon = M.id_of(body), M.canonical(body)
      if out.journal and not rebased then
        if have and have.key ~= key then
          -- another item code or country in this place: rows were added, removed or moved
          state:rebase(row); rebased = true
        elseif not have then
          -- a key the journal has at a later row: the rows moved
          local at = state:first_row(key)
          if at and at >= row then state:rebase(row); rebased = true end
        end
      end
      local first, verdict, st, res
      if rebased then
        first, verdict, st, res = state:carry(row, key, canon)
      elseif have and have.item == canon then
        first, verdict, st, res = have.dup_of, "unchanged", have.state, have.result
      elseif have then
        -- edited in place: created again
        state:requeue(row, canon)
        first, verdict, st = have.dup_of, "changed", "queued"
      else
        first, verdict, st = state:queue(row, key, canon), "new", "queued"
      end
      local lead = first and state:peek(first)
      if lead and lead.item ~= canon then
        state:drop(row)
        local message = string.format("item code %s for %s is also on %s, with other "
          .. "details: one classification per item code and country", body.item.itemCode,
          body.countryOfDestination, where_of(first))
        out.conflicts[row] = message
        out.problems[#out.problems + 1] = { row = row, message = message, item = item, first = first }
      elseif first then
        out.duplicates = out.duplicates + 1
      else
        out[verdict] = out[verdict] + 1
        if st == "done" then out.done = out.done + 1 end
        if opts.count then
          local what = action(st, res, opts.wait)
          out[what] = out[what] + 1
          if what == "create" and #out.listed < opts.count then
            out.listed[#out.listed + 1] = { row = row, code = body.item.itemCode,
              country = body.countryOfDestination, verdict = verdict }
          end
        end
      end
    end
  end
  if out.journal then out.removed = state:settle(out.rows) end
  return out
end

return M
