-- The fail-after-N sweep (spec/integration/core/oom_sweep_spec.lua), run by
-- spec/support/host_arm.c: for n = FROM, FROM + STEP, ... the workload runs
-- with the allocator armed to fail from its (n+1)-th allocation on; every
-- failure must be a memory error, every exchange added to a multi must
-- still be reported (none lost, none left running), and the same workload
-- must then succeed in the same state. The sweep ends at the first n the
-- workload gets through armed (every point reached), or at TO.
--   host_arm CPATH PATH oom_sweep.lua BASE WORKLOAD FROM STEP TO [WIDTH]
-- WIDTH: only WIDTH allocations fail from the (n+1)-th on (a passing shortage).
-- WORKLOAD: open (the module opened again, a grant), core (grant, create, read), multi (core.multi grant and create),
-- client (avalara.new and classify). Prints one line per problem and a
-- summary line "sweep W width D: points=P memory_errors=M complete_at=N".
local arm, disarm = _G.arm, _G.disarm -- the host's
-- LuaJIT's compiled traces do not survive every allocation failure (a crash
-- inside libluajit, called from a trace, in the client sweep; none with the
-- JIT off): the sweep checks the core, so it runs interpreted (docs/embedding.md).
if rawget(_G, "jit") then jit.off() end
local base, workload, from, step, to, width = ...
from, step, to, width = tonumber(from), tonumber(step), tonumber(to), tonumber(width or -1)
local core = require "avalara.core"
local ID, KEY = "2000000001", "DEMO-LICENSE-KEY-0001"
local url = base .. "/api/v2/companies/1001/classifications/hs"
local function body(code)
  return { countryOfDestination = "US", item = { companyId = 1001, itemCode = code,
    description = "porcelain coffee mug", itemGroup = "Kitchen" } }
end
require "cjson" -- loaded before the sweep: its own allocations are not the core's

-- A memory error, raised ("not enough memory") or returned (an avalara.error naming it).
local function memory_error(err)
  local s = type(err) == "table" and tostring(err.message) .. " " .. tostring(err.kind) or tostring(err)
  return s:find("memory", 1, true) ~= nil
end

local multi_state -- the multi of the current run, and what was added to it
local works = {
  open = function()
    package.loaded["avalara.core"] = nil
    local fresh = require "avalara.core"
    local tok = assert(fresh.client_credentials{ token_url = base .. "/connect/token", client_id = ID,
      client_secret = KEY })
    tok:close()
  end,
  core = function(tag)
    local tok = assert(core.client_credentials{ token_url = base .. "/connect/token", client_id = ID,
      client_secret = KEY })
    local st, model = core.request{ method = "POST", url = url, token = tok, body = body("S-" .. tag) }
    assert(st, model)
    local st2, again = core.request{ url = url .. "/" .. model.id, token = tok }
    assert(st2 == 200, again)
    tok:close()
  end,
  multi = function(tag)
    local m = core.multi{ concurrency = 2 }
    local s = { m = m, added = 0, reported = 0 }
    multi_state = s
    local function drain()
      for _ = 1, 500 do
        if m:pending() == 0 then return end
        for _, d in ipairs(m:poll(0.01)) do
          s.reported = s.reported + 1
          if d.err then error(d.err) end
          if d.token then s.token = d.token end
        end
      end
      error("multi: still pending")
    end
    m:add(core.prepare_grant("client_credentials", { token_url = base .. "/connect/token", client_id = ID,
      client_secret = KEY }))
    s.added = s.added + 1
    drain()
    m:add{ method = "POST", url = url, token = assert(s.token, "no token"), body = body("M-" .. tag) }
    s.added = s.added + 1
    drain()
    s.token:close()
    m:close()
  end,
  client = function(tag)
    local avalara = require "avalara"
    local c = avalara.new{ environment = "local", emulator_url = base, account_id = ID, license_key = KEY,
      company_id = 1001, retries = false }
    local model, err = c:classify({ itemCode = "C-" .. tag, description = "porcelain coffee mug" },
      { country = "US" })
    if not model then error(err) end
  end,
}
local work = assert(works[workload], workload)
work("warm") -- loads what the workload loads, fills the connection pool

local points, memerr, complete_at = 0, 0, nil
for n = from, to, step do
  points = points + 1
  multi_state = nil
  collectgarbage()
  local tag = workload .. n
  arm(n, width)
  local ok, err = pcall(work, tag)
  disarm()
  if ok then complete_at = n break end
  if memory_error(err) then memerr = memerr + 1
  else print(("n=%d not a memory error: %s"):format(n, tostring(err))) end
  local s = multi_state
  if s then
    -- what was added is still reported once the memory is back: none lost, none left running
    for _ = 1, 500 do
      if s.m:pending() == 0 then break end
      local okp, list = pcall(s.m.poll, s.m, 0.01)
      if okp then s.reported = s.reported + #list end
    end
    if s.m:pending() ~= 0 or s.reported < s.added then
      print(("n=%d multi: %d added, %d reported, %d pending"):format(n, s.added, s.reported, s.m:pending()))
    end
    if s.token then s.token:close() end
    s.m:close()
  end
  local again, err2 = pcall(work, workload .. n .. "b")
  if not again then print(("n=%d the state is broken after the failure: %s"):format(n, tostring(err2))) end
end
collectgarbage()
print(("sweep %s width %d: points=%d memory_errors=%d complete_at=%s"):format(workload, width, points, memerr,
  tostring(complete_at)))
