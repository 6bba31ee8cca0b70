--- The planning pass of a batch: each row of the source made into the body
-- its create sends, recorded in the batch's state (`avalara.batch.journal`)
-- and checked against it before any request.
-- @module avalara.batch.plan
local cjson = require "cjson"
local item_model = require "avalara.hs.item"

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

--- Records every row of `source` in `state` (queued, unless the journal has
-- it already) and checks it: a row that differs from what the journal has
-- for it means the journal belongs to another input; two rows with one item
-- code and country but other details conflict (one classification per code
-- and country). Commits nothing when it returns a `mismatch`.
-- @param client the `avalara.Client` (its `company_id`)
-- @tparam table state a journal (`avalara.batch.journal`)
-- @tparam function source returns an iterator of `row, item, problem` (problem: a
-- message for a row that is not valid, which is skipped)
-- @tparam table opts `{country, item_group, where_of}` (`where_of(row)`: how a conflict names the earlier
-- row, and a mismatch the row at fault, such as "line 166"; "an earlier row (row 165)" and "row 165" without it)
-- @treturn table `{rows = n, problems = {{row, message, item, first?}...}, conflicts = {[row] = message},
-- done = n (finished in the journal), mismatch = message | nil}`
function M.plan(client, state, source, opts)
  local out = { rows = 0, problems = {}, conflicts = {}, done = 0 }
  local where_of = opts.where_of or function(row) return "an earlier row (row " .. row .. ")" end
  for row, item, problem in source() do
    out.rows = row
    local body
    if not problem then body, problem = M.body(client.company_id, item, opts) end
    if problem then
      out.problems[#out.problems + 1] = { row = row, message = problem, item = item }
    else
      local key, canon = M.id_of(body), M.canonical(body)
      local have = state:get(row)
      if have and have.item ~= canon then
        state:rollback()
        out.mismatch = opts.where_of and string.format("%s (item code %s) is not the row the journal "
          .. "recorded there", opts.where_of(row), body.item.itemCode)
          or string.format("row %d (item code %s) is not the row %d the journal recorded", row, body.item.itemCode, row)
        return out
      end
      if have then
        if have.state == "done" then out.done = out.done + 1 end
      else
        local first = state:queue(row, key, canon)
        local lead = first and state:peek(first)
        if lead and lead.item ~= canon then
          state:drop(row)
          local message = string.format("item code %s for %s is also on %s, with other "
            .. "details: one classification per item code and country", body.item.itemCode,
            body.countryOfDestination, where_of(first))
          out.conflicts[row] = message
          out.problems[#out.problems + 1] = { row = row, message = message, item = item, first = first }
        end
      end
    end
  end
  return out
end

return M
