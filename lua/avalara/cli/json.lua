--- JSON for the `hscode` output: the same key order every run (the keys
-- given first in that order, then the rest sorted) and `/` written as it is
-- (cjson writes `\/`, and Debian's cjson has no `encode_escape_forward_slash`).
-- @module avalara.cli.json
local cjson = require "cjson"

local M = {}

local function scalar(v)
  return (cjson.encode(v):gsub("\\/", "/"))
end

local function is_array(t)
  local n = #t
  if n == 0 then return false end
  local count = 0
  for k in pairs(t) do
    if type(k) ~= "number" or k < 1 or k > n or k % 1 ~= 0 then return false end
    count = count + 1
  end
  return count == n
end

local encode

local function object(t, first)
  local keys, seen = {}, {}
  for _, k in ipairs(first or {}) do
    if t[k] ~= nil and not seen[k] then keys[#keys + 1], seen[k] = k, true end
  end
  local rest = {}
  for k in pairs(t) do
    if not seen[k] then rest[#rest + 1] = k end
  end
  table.sort(rest, function(a, b) return tostring(a) < tostring(b) end)
  for _, k in ipairs(rest) do keys[#keys + 1] = k end
  if #keys == 0 then return "{}" end
  local parts = {}
  for i, k in ipairs(keys) do parts[i] = scalar(tostring(k)) .. ":" .. encode(t[k]) end
  return "{" .. table.concat(parts, ",") .. "}"
end

encode = function(v, first)
  if type(v) ~= "table" or v == cjson.null then return scalar(v) end
  if is_array(v) then
    local parts = {}
    for i = 1, #v do parts[i] = encode(v[i]) end
    return "[" .. table.concat(parts, ",") .. "]"
  end
  return object(v, first)
end

--- `value` as one line of JSON: an object's keys in `first`'s order, then
-- the others sorted (nested objects: sorted); `/` not escaped.
-- @param value
-- @tparam[opt] table first a list of keys
-- @treturn string
function M.encode(value, first)
  return encode(value, first)
end

return M
