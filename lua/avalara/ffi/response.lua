--- What an `avl_result` means in Lua, as the classic binding says it (src/lua/error.c,
-- src/lua/transport.c avl_push_headers, src/lua/request.c outcome): the status, the body decoded
-- by the same decoder (`core.protocol.json_body`), the headers table, or an `avalara.error`
-- with the same fields.
-- @module avalara.ffi.response

local core = require "avalara.core"

local M = {}

local find, sub, lower, byte = string.find, string.sub, string.lower, string.byte
local json_body = core.protocol.json_body
local new_error = core.error

--- An `avl_err` as the `avalara.error` table the classic binding pushes for it.
-- @param ffi LuaJIT's ffi
-- @param e an `avl_err` cdata
-- @treturn table
function M.error(ffi, e)
  local str = ffi.string
  local t = { kind = e.kind ~= nil and str(e.kind) or "transport" }
  if e.has_body ~= 0 then t.body = str(e.body, e.body_len) end
  if e.status > 0 then t.status = e.status end
  if e.code[0] ~= 0 then t.code = str(e.code) end
  if e.number > 0 then t.number = e.number end
  t.message = e.message[0] ~= 0 and str(e.message) or "unknown error"
  t.retryable = e.retryable ~= 0
  t.needs_refresh = e.needs_refresh ~= 0
  if e.retry_after >= 0 then t.retry_after = e.retry_after end
  if e.request_id[0] ~= 0 then t.request_id = str(e.request_id) end
  if e.error_description[0] ~= 0 then t.error_description = str(e.error_description) end
  if e.error_uri[0] ~= 0 then t.error_uri = str(e.error_uri) end
  return new_error(t)
end

--- The first position from `v` on (before `eol`) that is not a space.
-- @string block
-- @int v
-- @int eol
-- @treturn int
function M.skip_spaces(block, v, eol)
  while v < eol and byte(block, v) == 32 do v = v + 1 end
  return v
end

--- The raw header block ("Name: value\r\n"...) as the classic binding's table: names lower-cased,
-- a value after its leading spaces, repeated names joined with ", ".
-- @string block
-- @treturn table
function M.headers(block)
  local h, pos, n = {}, 1, #block
  while pos <= n do
    local eol = find(block, "\r\n", pos, true) or n + 1
    local colon = find(block, ":", pos, true)
    if colon and colon < eol then
      local name = lower(sub(block, pos, colon - 1))
      local v = colon + 1
      -- one space, the usual, without a loop (an inner loop stops LuaJIT's trace here: bench/ffi.lua)
      if v < eol and byte(block, v) == 32 then
        v = v + 1
        if v < eol and byte(block, v) == 32 then v = M.skip_spaces(block, v, eol) end
      end
      local value = sub(block, v, eol - 1)
      local old = h[name]
      h[name] = old == nil and value or old .. ", " .. value
    end
    pos = eol + 2
  end
  return h
end

--- The outcome of a request that has its `avl_result` in `st.res`: status, body, headers, or
-- nil, err (a body that is not JSON becomes the classic binding's "parse" error).
-- @tparam table st the binding's per-state cdata (`res`, `size`)
-- @param C the library
-- @param req the `avl_req`
-- @param resp the `avl_resp`
function M.outcome(st, C, req, resp)
  local ffi, res = st.ffi, st.res
  if res.verdict ~= 0 then return nil, M.error(ffi, res.err) end
  local body
  if res.body ~= nil then
    local why
    body, why = json_body(ffi.string(res.body, res.body_len))
    if body == nil then
      C.avl_result_decode_failed(req, resp, why, res)
      return nil, M.error(ffi, res.err)
    end
  end
  local size = st.size
  local block = C.avl_resp_headers(resp, size)
  return res.status, body, M.headers(ffi.string(block, size[0]))
end

return M
