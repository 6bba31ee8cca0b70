-- Work the emulator does by itself, after a request has been answered: HS
-- classifications that come due (emulator.hsflow) and webhook deliveries
-- with their retries (emulator.webhooks). Jobs wait in lists of the shared
-- dict emu_jobs, so any worker may run them; every worker polls the lists
-- on a timer (`tick` seconds) and runs the due jobs of each kind, at most
-- `CONCURRENCY` at once on light threads (a slow webhook receiver holds
-- one of them, not the worker).
local util = require "emulator.util"

local dict = ngx.shared.emu_jobs

local M = {}

M.TICK = 0.05
M.CONCURRENCY = 16

local handlers = {}
local running = false

-- Registers the function that runs the jobs of `kind`: handler(job).
function M.on(kind, handler)
  handlers[kind] = handler
end

-- Queues `job` (a JSON-able table) to run at `due` (epoch seconds, default now).
function M.push(kind, job, due)
  job.due = due or util.now()
  local len, err = dict:rpush("q:" .. kind, util.json_encode(job))
  if not len then error("emulator: job queue full: " .. tostring(err)) end
end

-- The jobs of `kind` that are due; the others go back to the queue.
local function take_due(kind, now)
  local due, later = {}, {}
  for _ = 1, dict:llen("q:" .. kind) or 0 do
    local raw = dict:lpop("q:" .. kind)
    if not raw then break end
    local job = util.json_decode(raw)
    if job and job.due <= now then due[#due + 1] = job else later[#later + 1] = raw end
  end
  for _, raw in ipairs(later) do dict:rpush("q:" .. kind, raw) end
  return due
end

local function run(kind, jobs)
  local handler = handlers[kind]
  local i = 0
  local function worker()
    while true do
      i = i + 1
      local job = jobs[i]
      if not job then return end
      local ok, err = pcall(handler, job)
      if not ok then ngx.log(ngx.ERR, "emulator job ", kind, ": ", err) end
    end
  end
  local threads = {}
  for t = 1, math.min(M.CONCURRENCY, #jobs) do threads[t] = ngx.thread.spawn(worker) end
  for _, th in ipairs(threads) do ngx.thread.wait(th) end
end

-- One round: the due jobs of every kind. A round still running (a slow
-- receiver) is not overlapped by the next timer of the same worker.
function M.tick(premature)
  if premature or running then return end
  running = true
  local ok, err = pcall(function()
    local now = util.now()
    for kind in pairs(handlers) do
      local due = take_due(kind, now)
      if #due > 0 then run(kind, due) end
    end
  end)
  running = false
  if not ok then ngx.log(ngx.ERR, "emulator jobs: ", err) end
end

-- Starts the timer of this worker (init_worker_by_lua).
function M.start()
  require "emulator.hsflow"
  require "emulator.webhooks"
  local ok, err = ngx.timer.every(M.TICK, M.tick)
  if not ok then ngx.log(ngx.ERR, "emulator: cannot start the job timer: ", err) end
end

function M.reset()
  util.flush(dict)
end

return M
