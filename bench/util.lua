--- What every benchmark script needs: a log line, a command's output, a median.
local M = {}

--- Writes "bench: ..." to stderr (stdout is for the figures).
function M.log(fmt, ...) io.stderr:write(("bench: " .. fmt .. "\n"):format(...)) end

--- What a command prints (stdout and stderr), and whether it succeeded.
function M.capture(cmd)
  local p = assert(io.popen(cmd .. " 2>&1"))
  local out = p:read("*a")
  return out, p:close()
end

--- The median of a list of numbers (nil when empty); the list is not changed.
function M.median(t)
  local s = {}
  for i, v in ipairs(t) do s[i] = v end
  table.sort(s)
  local n = #s
  if n == 0 then return nil end
  return n % 2 == 1 and s[(n + 1) / 2] or (s[n / 2] + s[n / 2 + 1]) / 2
end

--- Pins process `pid` and its children (an nginx master and its workers) to `cpu` (taskset's list syntax).
function M.pin(pid, cpu)
  local ok = os.execute(("taskset -pc %s %d >/dev/null && for c in $(pgrep -P %d); do taskset -pc %s $c >/dev/null;"
    .. " done"):format(cpu, pid, pid, cpu))
  if not ok then error("cannot pin process " .. pid .. " to CPU " .. cpu) end
end

return M
