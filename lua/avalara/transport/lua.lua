--- Running a Lua transport function (`req -> resp | nil, err`, the client's
-- `transport` option, or cosockets in nginx) over the core's sans-I/O
-- exchanges: the core prepares each exchange, the function runs here, in the
-- caller's coroutine (so it may yield), and the core finishes the exchange
-- from its answer. Nothing here is nginx-specific: a runner of many
-- (`run_many`, e.g. nginx light threads) is given by the caller.
-- @module avalara.transport.lua
local M = {}

local find = string.find

-- Exchange runners by transport function (weak keys), registered by the
-- transports that can move an exchange's own bytes (`register`).
local runners = setmetatable({}, { __mode = "k" })

--- Registers `runner(ex, bytes, url, method, timeout) -> true | nil, err` for the
-- transport function `transport`: for exchanges that give their bytes
-- (`ex:wire()`, the FFI binding's), `run` sends them through `runner`,
-- which feeds the answer to `ex` (`ex:status`, `ex:header`, `ex:body`)
-- and returns true, or returns nil, err (then `ex:finish(nil, err)` reads
-- the error as the classic exchange does, whatever was fed).
-- @param transport the transport function
-- @param runner the function
function M.register(transport, runner)
  runners[transport] = runner
end

--- Whether `transport` has a runner (`register`): its requests may go on an exchange that gives
-- its bytes.
-- @param transport the transport function
-- @treturn boolean
function M.runs_bytes(transport)
  return runners[transport] ~= nil
end

--- Feeds a response (`status`, a `headers` table, `body`) to an exchange that is fed
-- (`ex:status`, `ex:header`, `ex:body`), as the classic exchange's `finish` reads a response
-- table: string names without CR or LF and string or number values, until a limit stops the
-- reading (then no body). Returns true, or nil, err when the status is not valid (the classic
-- "transport function returned no valid status").
-- @param ex the exchange
-- @int status
-- @tparam table headers
-- @param body
function M.feed(ex, status, headers, body)
  if type(status) ~= "number" or status < 100 or status > 999 then
    return nil, { kind = "transport", message = "transport function returned no valid status" }
  end
  ex:status(status)
  local going = true
  if type(headers) == "table" then
    for name, value in pairs(headers) do
      local tv = type(value)
      if type(name) == "string" and (tv == "string" or tv == "number") and not find(name, "\r", 1, true)
        and not find(name, "\n", 1, true) then
        going = ex:header(name, value)
        if not going then break end
      end
    end
  end
  if going and type(body) == "string" then ex:body(body) end
  return true
end

-- An exchange through a runner: the bytes from the core, the answer fed to it.
local function run_bytes(runner, ex)
  -- nil, err: a value unfit for the wire (a control character): never sent
  local bytes, rerr = ex:wire()
  if not bytes then ex:close(); return nil, rerr end
  -- as the request was built (the method upper-cased, the default timeout), not as asked
  local url, method, timeout = ex:target()
  local ok, done, err = pcall(runner, ex, bytes, url, method, timeout)
  if not ok then
    if type(done) == "string" and done:find("interrupted!", 1, true) then error(done, 0) end
    return ex:finish(nil, { kind = "transport", message = "transport function raised: " .. tostring(done) })
  end
  if done then return ex:conclude() end
  return ex:finish(nil, err)
end

--- One exchange through `transport`.
-- @param transport the function
-- @param ex a prepared core exchange
-- @tparam[opt] table args the exchange's arguments (`url`, `method`, `timeout`): with them, an
-- exchange that gives its bytes goes through the transport's runner when it has one (`register`)
-- @return what the exchange's `finish` returns (status, body, headers | a token | nil, err)
function M.run(transport, ex, args)
  local runner = args and args.url and runners[transport]
  if runner and ex.wire then return run_bytes(runner, ex) end
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
