--- What a batch row ends with: a classification model or an error
-- (`avalara.core.error`), the errors the batch makes itself, and their JSON
-- text in the journal.
-- @module avalara.batch.result
local cjson = require "cjson"
local core = require "avalara.core"

local M = {}

-- The fields of an error that the journal keeps.
local ERROR_FIELDS = { "kind", "status", "code", "number", "message", "request_id", "retryable", "retry_after",
  "not_attempted", "invalid", "id", "field", "row" }

--- A result (a model, or an error) as JSON text.
-- @param result a classification model or a structured error
-- @treturn string
function M.encode(result)
  if core.is_error(result) then
    local e = {}
    for _, k in ipairs(ERROR_FIELDS) do e[k] = result[k] end
    return cjson.encode { error = e }
  end
  return cjson.encode(result)
end

--- The result `encode` wrote: a model, or an error (`avalara.core.error`).
-- @string text
-- @return the model or the error
function M.decode(text)
  local t = cjson.decode(text)
  if type(t.error) == "table" and t.id == nil then
    local e = {}
    for _, k in ipairs(ERROR_FIELDS) do
      local v = t.error[k]
      -- lua-cjson reads every number as a float: 404, not 404.0
      if type(v) == "number" and math.tointeger then v = math.tointeger(v) or v end
      if v ~= cjson.null then e[k] = v end
    end
    return core.error(e)
  end
  return t
end

--- Whether a result taken from the journal is worth another try: an error
-- that retrying may change (a 5xx, a timeout), or a PENDING model when the
-- batch waits for the final one.
-- @param result a model or an error
-- @bool wait
-- @treturn boolean
function M.again(result, wait)
  if core.is_error(result) then return result.retryable == true or result.kind == "timeout" end
  return wait and type(result) == "table" and result.status == "PENDING" or false
end

--- The error of a row that was not sent because the batch stopped (`reason`:
-- a quota exhaustion, or no access token): kind `quota` or the reason's,
-- `not_attempted = true`.
-- @param reason the error that stopped the batch
-- @return the error
function M.not_attempted(reason)
  local quota = reason.kind == "quota"
  return core.error { kind = quota and "quota" or reason.kind or "api", code = reason.code,
    status = reason.status, not_attempted = true, retryable = false,
    message = "not attempted: " .. (quota and "the classification quota is used up"
      or "no access token could be had") .. " (" .. tostring(reason.message) .. ")" }
end

--- The error of a row that is not valid (`message` says why): kind `input`,
-- `invalid = true`, with its `row`.
-- @int row
-- @string message
-- @return the error
function M.invalid(row, message)
  return core.error { kind = "input", message = message, invalid = true, retryable = false, row = row }
end

--- A retryable error whose `Retry-After` is past the retry deadline, said
-- in its message (the other fields copied).
-- @param err the error
-- @number retry_after seconds
-- @number deadline seconds
-- @return a new error
function M.beyond_deadline(err, retry_after, deadline)
  local e = {}
  for _, k in ipairs { "kind", "status", "code", "number", "request_id", "retry_after", "body" } do e[k] = err[k] end
  e.retryable = true
  e.message = string.format("%s (the service asks to retry after %g s, beyond the retry deadline of %g s)",
    tostring(err.message), retry_after, deadline)
  return core.error(e)
end

--- A classification still PENDING at the end of the wait: kind `timeout`.
-- @param id its id
-- @number timeout seconds waited
-- @return the error
function M.still_pending(id, timeout)
  return core.error { kind = "timeout", retryable = true, message = string.format(
    "classification %s still PENDING after %g s", tostring(id), timeout) }
end

--- An answer without a body: kind `parse`, retryable.
-- @int status
-- @return the error
function M.no_body(status)
  return core.error { kind = "parse", status = status, message = "the answer has no body", retryable = true }
end

return M
