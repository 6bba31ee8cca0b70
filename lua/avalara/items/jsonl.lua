--- JSON Lines catalog files for `avalara.items.catalog.read`: one object a
-- line, blank lines skipped, as `hscode batch` reads them.
-- @module avalara.items.jsonl
local core = require "avalara.core"
local cjson = require "cjson.safe"

local M = {}

--- Whether `path` names a JSON Lines file (`.jsonl`, `.ndjson`).
-- @string path
-- @treturn boolean
function M.named(path)
  local lower = path:lower()
  return lower:match("%.jsonl$") ~= nil or lower:match("%.ndjson$") ~= nil
end

--- The items of a JSON Lines text: `item_of(object, where)` for each object.
-- @string text
-- @string path for messages
-- @tparam function item_of
-- @return a list of items, or nil, err (kind "input", with `path` and `row`, the line)
function M.items(text, path, item_of)
  local out, n = {}, 0
  for line in (text .. "\n"):gmatch("([^\n]*)\n") do
    n = n + 1
    if line:find("%S") then
      local value, err = cjson.decode(line)
      local why = value == nil and "not valid JSON (" .. tostring(err) .. ")"
        or (type(value) ~= "table" or (next(value) ~= nil and value[1] ~= nil)) and "not a JSON object"
      if why then
        return nil, core.error { kind = "input", message = path .. " line " .. n .. ": " .. why, path = path, row = n,
          retryable = false }
      end
      out[#out + 1] = item_of(value, path .. " line " .. n)
    end
  end
  return out
end

return M
