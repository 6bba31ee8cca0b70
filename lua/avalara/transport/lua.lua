--- Running a Lua transport function (`req -> resp | nil, err`, the client's
-- `transport` option, or cosockets in nginx) over the core's sans-I/O
-- exchanges: the core prepares each exchange, the function runs here, in the
-- caller's coroutine (so it may yield), and the core finishes the exchange
-- from its answer. Nothing here is nginx-specific: a runner of many
-- (`run_many`, e.g. nginx light threads) is given by the caller.
-- @module avalara.transport.lua
local M = {}

--- One exchange through `transport`.
-- @param transport the function
-- @param ex a prepared core exchange
-- @return what the exchange's `finish` returns (status, body, headers | a token | nil, err)
function M.run(transport, ex)
  -- nil, err: a value unfit for the wire (a control character): never sent
  local req, rerr = ex:request()
  if not req then ex:close(); return nil, rerr end
  local ok, resp, terr = pcall(transport, req)
  if not ok then
    if type(resp) == "string" and resp:find("interrupted!", 1, true) then error(resp, 0) end
    resp, terr = nil, { kind = "transport", message = "transport function raised: " .. tostring(resp) }
  end
  return ex:finish(resp, terr)
end

-- The answer of one request, as `exchange_many` gives it.
local function settle(status, body, headers)
  if status == nil then return { err = body } end
  return { status = status, body = body, headers = headers }
end

--- Many exchanges through `transport`: one at a time, or through
-- `run_many(transport, requests, concurrency)` (-> a list of `{resp, err}`)
-- when given.
-- @tparam table exchanges prepared core exchanges
-- @param transport the function
-- @param[opt] run_many
-- @param[opt] concurrency
-- @treturn table a list aligned with `exchanges`: `{status, body, headers}` or `{err}`
function M.run_many(exchanges, transport, run_many, concurrency)
  local out = {}
  if run_many then
    local requests, at = {}, {}
    for i, ex in ipairs(exchanges) do
      local req, rerr = ex:request()
      if req then requests[#requests + 1], at[#requests + 1] = req, i
      else ex:close(); out[i] = { err = rerr } end
    end
    local answers = run_many(transport, requests, concurrency)
    for j, i in ipairs(at) do out[i] = settle(exchanges[i]:finish(answers[j][1], answers[j][2])) end
  else
    for i, ex in ipairs(exchanges) do out[i] = settle(M.run(transport, ex)) end
  end
  return out
end

return M
