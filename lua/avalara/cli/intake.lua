--- The options with which `hscode batch` and `hscode items classify` read
-- real exports (a Shopify catalog, a ';' CSV from European Excel): `--map`,
-- `--delimiter`, `--keep-html` and `--truncate`, checked before anything
-- is read or sent. The readers themselves are the library's
-- (`avalara.hs.columns`, `avalara.csv`, `avalara.hs.text`).
-- @module avalara.cli.intake
local csv = require "avalara.csv"
local columns = require "avalara.hs.columns"
local common = require "avalara.cli.common"

local M = {}

--- The options, as a command declares them (`{name, metavar}`; a flag without one).
M.OPTIONS = { { "map", "FIELD=COLUMN,..." }, { "delimiter", "D" }, { "keep-html" }, { "truncate" } }

--- Their help, for a command's help text.
M.HELP = [[
  --map FIELD=COLUMN,...  the column (or JSON key) of each field, such as
                       itemCode=Variant SKU,description=Title; write a ',',
                       '=' or '\' of a column name as \, \= or \\
  --delimiter D        the CSV delimiter: ',', ';' or tab (also \t); by
                       default the one the header line has most of
  --keep-html          send descriptions and summaries as they are (by default
                       HTML tags are removed, &amp; and the like decoded and
                       spaces collapsed)
  --truncate           cut descriptions longer than 255 characters there
                       (counted in the summary) instead of refusing them
]]

--- The settings of these options: `{map, delimiter, keep_html, truncate}`
-- (`map` checked against `fields`, `{normal name = field}`); a bad one is a
-- usage error of `command` naming it.
-- @tparam table opts the parsed options
-- @string command
-- @tparam table fields the fields the command's reader fills
-- @treturn table
function M.settings(opts, command, fields)
  local out = { keep_html = opts.keep_html and true or false, truncate = opts.truncate and true or false }
  local why
  if opts.map then
    out.map, why = columns.mapping(opts.map, fields)
    if not out.map then common.usage_error("--map: " .. why, command) end
  end
  if opts.delimiter then
    out.delimiter, why = csv.delimiter(opts.delimiter)
    if not out.delimiter then common.usage_error("--delimiter: " .. why, command) end
  end
  return out
end

--- The summary's note on cut descriptions ("3 descriptions cut to 255 characters (--truncate)"), or nil.
-- @int n how many
-- @int limit the length they were cut to
-- @treturn string|nil
function M.cut_note(n, limit)
  if not n or n == 0 then return nil end
  return string.format("%d description%s cut to %d characters (--truncate)", n, n == 1 and "" or "s", limit)
end

return M
