-- bench/RESULTS.md is made of sections, each written by one bench script
-- (so one script can run again without losing the others' figures):
--
--   <!-- begin NAME -->
--   ...
--   <!-- end NAME -->
--
--   local results = require "bench.results"
--   results.write("bench/RESULTS.md", "percall-fixed", text)
local M = {}

local HEADER = "# Benchmark results\n\nEach section is written by its bench script (`make bench` runs them all); "
  .. "do not edit by hand.\n"

local function read(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("*a")
  f:close()
  return s
end

--- Replaces section `name` of the file at `path` with `text` (or adds it at the end).
function M.write(path, name, text)
  local doc = read(path) or HEADER
  local begin_mark, end_mark = "<!-- begin " .. name .. " -->", "<!-- end " .. name .. " -->"
  local block = begin_mark .. "\n" .. text:gsub("\n*$", "") .. "\n" .. end_mark
  local i = doc:find(begin_mark, 1, true)
  local j = i and doc:find(end_mark, i, true)
  if i and j then
    doc = doc:sub(1, i - 1) .. block .. doc:sub(j + #end_mark)
  else
    doc = doc:gsub("\n*$", "") .. "\n\n" .. block .. "\n"
  end
  local f = assert(io.open(path .. ".tmp", "wb"))
  f:write(doc)
  f:close()
  assert(os.rename(path .. ".tmp", path))
end

return M
