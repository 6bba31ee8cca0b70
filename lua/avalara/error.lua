--- Helpers that build the Lua layer's one error table (`core.error`, see
-- docs/errors.md): every run-time failure is `nil, err` with such a table;
-- programming errors raise naming the function and the argument.
--
--    local errors = require "avalara.error"
--    return nil, errors.new { kind = "timeout", message = "still PENDING", retryable = true }
--    errors.raise("client:wait", "'opts' must be a table")   -- raises at the caller's caller
-- @module avalara.error
local core = require "avalara.core"

local M = {}

--- An error table: `fields` = `{kind, message, code?, retryable?, status?, request_id?, ...}`
-- (`retryable` false unless given).
-- @tparam table fields
-- @treturn table the error (`core.is_error` is true for it)
function M.new(fields)
  if fields.retryable == nil then fields.retryable = false end
  return core.error(fields)
end

--- Whether `v` is an error table made by `core.error`.
-- @param v
-- @treturn boolean
function M.is(v)
  return core.is_error(v)
end

--- Raises a programming error `"<where>: <message>"` at the caller of the
-- function that calls this one (or `level` frames above it).
-- @string where the function, as the caller knows it (`"client:classify"`)
-- @string message names the argument
-- @int[opt=1] level frames above the function that calls `raise`
function M.raise(where, message, level)
  error(where .. ": " .. message, (level or 1) + 2)
end

--- Re-raises the interpreter's "interrupted!" (Ctrl-C) caught by a pcall:
-- it must never be taken for a failure.
-- @param err what the pcall caught
function M.rethrow_interrupt(err)
  if type(err) == "string" and err:find("interrupted!", 1, true) then error(err, 0) end
end

return M
