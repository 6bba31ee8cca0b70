--- Batch progress on stderr: a line redrawn in place on a terminal (done,
-- failed, rate, elapsed time, ETA), plain lines otherwise (at each tenth of
-- the way, and at least every 30 s); none with `--quiet` or `--no-progress`,
-- events `{"level":"info","event":"progress",...}` with `--log-format json`.
-- @module avalara.cli.progress
local clock = require "avalara.clock"
local common = require "avalara.cli.common"
local log = require "avalara.cli.log"

local M = {}

--- A progress reporter for `total` rows.
-- @param sys the command's system table (`stderr`, `isatty`)
-- @int total
-- @tparam[opt] int already rows finished before this run (from the journal)
-- @treturn function `update(done, failed, final)`
function M.new(sys, total, already)
  if not log.wants(sys, "info", "progress") then return function() end end
  local err, tty = sys.stderr, sys.isatty(2) and not log.is_json(sys)
  local started, last_line, step, last_draw = clock.now(), clock.now(), -1, 0
  already = already or 0
  local function figures(done)
    local elapsed = clock.now() - started
    local fresh = done - already
    local rate = elapsed > 0 and fresh / elapsed or 0
    local eta = rate > 0 and (total - done) / rate or nil
    return elapsed, rate, eta
  end
  local function update(done, failed, final)
    local t = clock.now()
    if tty then
      if not final and done < total and t - last_draw < 0.1 then return end
      last_draw = t
      local elapsed, rate, eta = figures(done)
      local filled = total > 0 and math.floor(30 * done / total) or 30
      err:write(string.format("\r[%s%s] %d/%d  %d failed  %.0f/s  %s%s\27[K", string.rep("#", filled),
        string.rep(".", 30 - filled), done, total, failed, rate, common.duration(elapsed),
        eta and done < total and "  ETA " .. common.duration(eta) or ""))
      if done == total or final then err:write("\n") end
    else
      local tenth = total > 0 and math.floor(10 * done / total) or 10
      if tenth > step or t - last_line >= 30 or (final and done < total) then
        step, last_line = tenth, t
        local elapsed, rate, eta = figures(done)
        eta = done < total and eta or nil
        log.emit(sys, "info", "progress", nil, { { "done", done }, { "total", total }, { "failed", failed },
          { "rate", math.floor(rate + 0.5) }, { "elapsed", math.floor(elapsed + 0.5) },
          { "eta", eta and math.floor(eta + 0.5) } },
          string.format("hscode: %d/%d done, %d failed (%.0f/s, %s%s)\n", done, total, failed, rate,
          common.duration(elapsed), eta and ", ETA " .. common.duration(eta) or ""))
      end
    end
    err:flush()
  end
  update(already, 0)
  return update
end

return M
