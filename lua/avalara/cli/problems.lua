--- The problems of an input file (`hscode batch`, `hscode items classify`):
-- each names the file line where its record starts; the first `MAX_SHOWN`
-- go to the terminal, all of them to `--errors FILE` (CSV: line, column,
-- problem), written as the other outputs are (a temporary file beside it,
-- never through a link, then renamed over it).
-- @module avalara.cli.problems
local sys_calls = require("avalara.core").sys
local private = require "avalara.private"
local csv = require "avalara.csv"
local output = require "avalara.cli.output"
local common = require "avalara.cli.common"

local M = {}

--- How many problems the terminal shows.
M.MAX_SHOWN = 50

--- Checks `--errors PATH` before any work: its target (`avalara.cli.output.target`), or nil.
-- @tparam table opts the parsed options
-- @string command the command's name (for the usage error)
function M.target(opts, command)
  if opts.errors == nil then return nil end
  if opts.errors == "" or opts.errors == "-" then
    common.usage_error("--errors needs a file's name", command)
  end
  local t, err = output.target(opts.errors)
  if not t then common.fail(common.EXIT.usage, (err:gsub("^%-%-out ", "--errors "))) end
  return t
end

--- Writes every problem to the target as CSV (line, column, problem); fails naming the file.
-- @tparam table t a target from `M.target`
-- @tparam table list `{line, column?, problem}`...
function M.write(t, list)
  local records = { { "line", "column", "problem" } }
  for i, p in ipairs(list) do records[i + 1] = { tostring(p.line or ""), p.column or "", p.problem } end
  local text = csv.format(records)
  local ok, err
  if t.kind == "direct" then
    local f
    f, err = io.open(t.real, "wb")
    ok = f ~= nil
    if f then ok, err = f:write(text); f:close() end
  else
    local f, tmp = private.temp_beside(t.real, ".hscode-tmp", t.mode)
    ok, err = f ~= nil, tmp
    if f then
      ok, err = f:write(text)
      if ok then ok, err = sys_calls.fsync(f) end
      f:close()
      if ok then ok, err = os.rename(tmp, t.real) end
      if not ok then os.remove(tmp) end
    end
  end
  if not ok then
    local message = type(err) == "table" and err.message or tostring(err)
    common.fail(common.EXIT.failed, "cannot write " .. t.path .. ": " .. message:gsub("^cannot create ", ""))
  end
end

--- The problems as one message: `head`, then the first `MAX_SHOWN` (`where: problem`), then how many
-- more and where they are. Writes them all to `t` when given.
-- @string head what the list is about
-- @tparam table list `{where, line, column?, problem}`...
-- @tparam[opt] table t a target from `M.target`
-- @treturn string
function M.message(head, list, t)
  if t then M.write(t, list) end
  local lines, n = { head .. ":" }, #list
  for i = 1, math.min(n, M.MAX_SHOWN) do lines[#lines + 1] = "  " .. list[i].where .. ": " .. list[i].problem end
  if n > M.MAX_SHOWN then
    lines[#lines + 1] = string.format("  ... and %d more: %s", n - M.MAX_SHOWN,
      t and "all " .. n .. " are in " .. t.path or "--errors FILE writes all " .. n .. " (CSV: line, column, problem)")
  elseif t then
    lines[#lines + 1] = "  (also in " .. t.path .. ")"
  end
  return table.concat(lines, "\n")
end

return M
