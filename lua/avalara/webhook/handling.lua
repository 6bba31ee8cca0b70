--- Handling parsed webhook events once (`avalara.webhook.handle` and
-- `openresty`): each event id is claimed in the receiver's seen-set
-- (`avalara.webhook.seen`), `on_event` runs, the id is marked done, or
-- released when `on_event` raised so that the service's retry is handled.
-- @module avalara.webhook.handling
local M = {}

--- Claims one event in `opts.seen`, runs `opts.on_event`, marks it done.
-- @param event the parsed event
-- @tparam table opts `{seen, on_event}`
-- @return status, answer, the event handled or nil, a message for the log or nil
function M.one(event, opts)
  local seen, token = opts.seen, true
  if seen then
    local state
    token, state = seen:claim(event.id)
    if token == nil then
      return 503, { error = "the event could not be checked against the events seen" }, nil,
        "avalara.webhook: seen:claim failed: " .. tostring(state)
    end
    if not token then
      if state == "done" then return 200, { ok = true, duplicate = true } end
      return 409, { error = "this event is being handled: send it again later" }
    end
  end
  local ok, why = pcall(opts.on_event, event)
  if not ok then
    if seen then seen:release(event.id, token) end
    return 500, { error = "the event could not be handled" }, nil, "avalara.webhook: on_event raised: " .. tostring(why)
  end
  if seen then
    local done, derr = seen:done(event.id, token)
    if not done then
      return 200, { ok = true }, event, "avalara.webhook: seen:done failed (a retry after pending_ttl would be "
        .. "handled again): " .. tostring(derr)
    end
  end
  return 200, { ok = true }, event
end

--- Each event of an invocation in turn: the first failure stops (the service
-- sends the whole invocation again; the events handled are duplicates then),
-- an event being handled elsewhere makes the answer 409 once the others are done.
-- @tparam table events the parsed events
-- @tparam table opts `{seen, on_event}`
-- @return status, answer, the list of events handled, a message for the log or nil
function M.all(events, opts)
  local handled, duplicates, busy, logs = {}, 0, false, {}
  for _, event in ipairs(events) do
    local status, answer, done, log = M.one(event, opts)
    if log then logs[#logs + 1] = log end
    if status == 409 then
      busy = true
    elseif status ~= 200 then
      return status, answer, handled, table.concat(logs, "; ")
    elseif answer.duplicate then
      duplicates = duplicates + 1
    else
      handled[#handled + 1] = done
    end
  end
  local log = logs[1] and table.concat(logs, "; ") or nil
  if busy then
    return 409, { error = "an event of this delivery is being handled: send it again later" }, handled, log
  end
  if duplicates == #events then return 200, { ok = true, duplicate = true }, handled, log end
  return 200, { ok = true }, handled, log
end

return M
