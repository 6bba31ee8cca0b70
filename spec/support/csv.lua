-- Shared by the CSV specs (avalara.csv, the CLI's reader).
local M = {}

--- The fields of parsed records, without their `line`: a list of lists of strings.
function M.fields(records)
  local out = {}
  for i, r in ipairs(records) do
    out[i] = {}
    for j, v in ipairs(r) do out[i][j] = v end
  end
  return out
end

return M
