--- The state of a batch in this process's memory (a batch without a
-- journal file): the methods of `avalara.batch.journal`'s files, nothing
-- kept after the process.
-- @module avalara.batch.memory
local M = {}

local Memory = {}
Memory.__index = Memory

--- An empty state.
-- @treturn table the state
function M.new()
  return setmetatable({ rows = {}, keys = {} }, Memory)
end

--- What is known of `row`: `{state, key, item, result, dup_of}` (result as JSON text), or nil.
-- @int row
function Memory:get(row)
  return self.rows[row]
end

--- Records `row` as queued: its key (item code and country) and its
-- canonical item (what is sent). A row whose key an earlier row has is a
-- duplicate of it (`dup_of`).
-- @int row
-- @string key
-- @string item
-- @return the earlier row with the same key, or nil
function Memory:queue(row, key, item)
  local first = self.keys[key]
  if first and first >= row then first = nil end
  if not first then self.keys[key] = row end
  self.rows[row] = { state = "queued", key = key, item = item, dup_of = first }
  return first
end

--- Whether nothing is recorded.
-- @treturn boolean
function Memory:empty()
  return next(self.rows) == nil
end

--- The first row recorded with `key`, or nil.
-- @string key
function Memory:first_row(key)
  return self.keys[key]
end

--- Sets the rows from `from` on aside: the input changed there. Each is
-- then found by its key (`carry`); what no row takes is dropped (`settle`).
-- @int from
function Memory:rebase(from)
  local previous, previous_keys = {}, {}
  for row, r in pairs(self.rows) do
    if row >= from then previous[row], self.rows[row] = r, nil end
  end
  for key, row in pairs(self.keys) do
    if row >= from then previous_keys[key], self.keys[key] = row, nil end
  end
  self.previous, self.previous_keys = previous, previous_keys
end

--- Queues `row` again with another item (its details changed, its key
-- did not): its result is forgotten.
-- @int row
-- @string item
function Memory:requeue(row, item)
  local r = self.rows[row]
  r.item, r.state, r.result = item, "queued", nil
end

--- Records `row` after a `rebase`: a duplicate of an earlier row of this
-- input, or the row set aside with its key (its progress kept when its item
-- is the same), or a new one (queued).
-- @int row
-- @string key
-- @string item
-- @return the earlier row with the same key or nil; "unchanged", "changed" or "new"; the state
function Memory:carry(row, key, item)
  local first = self.keys[key]
  if first and first < row then
    self.rows[row] = { state = "queued", key = key, item = item, dup_of = first }
    return first
  end
  self.keys[key] = row
  local at = self.previous_keys[key]
  local p = at and self.previous[at]
  self.previous_keys[key] = nil
  if p and p.item == item then
    self.rows[row] = { state = p.state, key = key, item = item, result = p.result }
    return nil, "unchanged", p.state, p.result
  end
  self.rows[row] = { state = "queued", key = key, item = item }
  return nil, p and "changed" or "new", "queued"
end

--- Ends the planning pass over `rows` rows: what the input no longer has
-- is dropped.
-- @int rows
-- @treturn int how many item codes and countries were dropped
function Memory:settle(rows)
  local removed = 0
  if self.previous_keys then
    for _ in pairs(self.previous_keys) do removed = removed + 1 end
    self.previous, self.previous_keys = nil, nil
    return removed
  end
  for key, row in pairs(self.keys) do
    if row > rows then removed, self.keys[key] = removed + 1, nil end
  end
  for row in pairs(self.rows) do
    if row > rows then self.rows[row] = nil end
  end
  return removed
end

--- As `get` (for the journal file: without changing what is read ahead).
-- @int row
function Memory:peek(row)
  return self.rows[row]
end

--- Forgets a row just queued (a conflicting duplicate).
-- @int row
function Memory:drop(row)
  self.rows[row] = nil
end

local function set_state(self, row, state, result)
  local r = self.rows[row]
  r.state = state
  if result ~= nil then r.result = result end
end

--- Its create is about to be sent.
function Memory:sent(row) set_state(self, row, "sent") end
--- Its create answered 201.
function Memory:created(row) set_state(self, row, "created") end
--- Back to queued (its create was refused: nothing was created).
function Memory:reset(row) set_state(self, row, "queued") end
--- Finished: `result` is the JSON text of its model or error.
function Memory:done(row, result) set_state(self, row, "done", result) end
--- Makes everything recorded so far durable (nothing to do in memory).
function Memory.commit() return true end
--- No earlier run: nil (see `avalara.batch.journal`'s `last_commit`).
function Memory.last_commit() return nil end
--- Undoes what was recorded since the last commit (nothing to do in memory).
function Memory.rollback() return true end
--- Ends it.
function Memory.close() return true end

Memory.__tostring = function() return "avalara.journal.memory" end

return M
