--- The window of a batch run: the rows taken from the source and not yet
-- written. A row is finished (`finish`, `fail`), waits for its code's
-- description when the batch fills a descriptions cache (`describe_later`),
-- and goes to the sink in input order as soon as every earlier row has gone
-- (`flush`). The functions take the run's state (`avalara.batch.pipeline`).
-- @module avalara.batch.window
local core = require "avalara.core"
local result = require "avalara.batch.result"

local M = {}

--- Hands the finished rows at the head of the window to the sink, in order.
-- `interrupted`: a row created but not finished goes as it is (PENDING, with
-- its id); the first row not even created ends it.
function M.flush(st, interrupted)
  local s = st.summary
  while true do
    local rec = st.window[st.next_out]
    if not rec then break end
    if interrupted and not rec.finished and rec.model then
      rec.finished, rec.result = true, rec.model
    end
    if interrupted then rec.waiting = nil end
    if not rec.finished or rec.waiting then break end
    st.sink(rec.row, rec.item, rec.result)
    s.written = s.written + 1
    st.window[st.next_out] = nil
    st.next_out = st.next_out + 1
  end
end

--- Looks the code of a finished row up (once per country and code) before
-- the row is written, when the batch fills a descriptions cache.
function M.describe_later(st, rec)
  local r, describe = rec.result, st.describe
  if not describe or core.is_error(r) or type(r.hsCode) ~= "string" then return end
  local country = r.countryOfDestination or rec.body.countryOfDestination
  if not describe:unknown(country, r.hsCode) then return end
  local k = country .. "\0" .. r.hsCode
  local lookup = st.describing[k]
  if not lookup then
    lookup = { step = "describe", country = country, code = r.hsCode, waiters = {}, attempts = 0 }
    st.describing[k] = lookup
    st.urgent:front(lookup)
  end
  rec.waiting = true
  lookup.waiters[#lookup.waiters + 1] = rec
end

--- A describe step ended (`body` its answer, or `err`): its rows may be written.
function M.described(st, rec, body, err)
  st.describe:learn(rec.country, rec.code, body, err)
  for _, w in ipairs(rec.waiters) do w.waiting = nil end
  st.describing[rec.country .. "\0" .. rec.code] = nil
end

--- A row is finished with `r` (a model or an error). `how`: nil (sent),
-- "journal" (taken from it), "dup" (a duplicate's), "invalid" or "not attempted".
function M.finish(st, rec, r, how)
  local s = st.summary
  rec.finished, rec.result = true, r
  -- every row that was created has its id, failed or not
  if rec.created and core.is_error(r) and r.id == nil then r.id = rec.id end
  if how ~= "journal" and how ~= "not attempted" and rec.body then
    st.state:done(rec.row, result.encode(r))
  end
  if how == "journal" then s.resumed = s.resumed + 1 end
  if how == "not attempted" then s.not_attempted = s.not_attempted + 1
  elseif how == "invalid" then s.invalid = s.invalid + 1
  elseif core.is_error(r) then s.failed = s.failed + 1
  else s.ok = s.ok + 1 end
  st.finished = st.finished + 1
  if st.opts.on_progress then st.opts.on_progress(st.finished, s.total, rec.row, r) end
  if how ~= "not attempted" and how ~= "invalid" then M.describe_later(st, rec) end
  for _, dup in ipairs(rec.dups or {}) do
    s.duplicates = s.duplicates + 1
    M.finish(st, dup, r, how == "journal" and "dup" or how)
  end
  rec.dups = nil
end

--- A step failed for good with `err`.
function M.fail(st, rec, err)
  if rec.step == "describe" then return M.described(st, rec, nil, err) end
  M.finish(st, rec, err)
end

return M
