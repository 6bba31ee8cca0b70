--- The argument checks of the Items service (`avalara.items`): wrong
-- arguments are programming errors, raised at once naming the function
-- (`where`) and the argument.
-- @module avalara.items.args
local country_codes = require "avalara.country"

local M = {}

--- The most items (or rows) one create, initiate or verify request may hold
-- ("the maximum number of items that can be created in a single call is 500").
M.MAX_PER_REQUEST = 500

--- Raises `where: message` at the caller's caller (`level` frames above, default 2).
-- @string where the function's name, such as `client:create_items`
-- @string message
-- @int[opt] level
function M.fail(where, message, level)
  error(where .. ": " .. message, (level or 2) + 1)
end
local fail = M.fail

--- Whether `v` is a positive integer.
-- @param v
-- @treturn boolean
function M.integer(v)
  return type(v) == "number" and v == math.floor(v) and v > 0
end
local integer = M.integer

--- `v` when it is a positive integer id, else raises naming `name`.
-- @string where
-- @string name the argument
-- @param v
-- @treturn int
function M.id(where, name, v)
  if not integer(v) then
    fail(where, "'" .. name .. "' must be a positive integer id (got " .. tostring(v) .. ")", 3)
  end
  return v
end

--- `v` upper-cased when it is a country (two letters, `avalara.country.problem`: not UK but GB),
-- else raises naming `name`.
-- @string where
-- @string name the argument
-- @param v
-- @treturn string
function M.country(where, name, v)
  if type(v) ~= "string" or not v:match("^%a%a$") then
    fail(where, "'" .. name .. "' must be a two-letter country code, such as US (got " .. tostring(v) .. ")", 3)
  end
  local why = country_codes.problem(v)
  if why then fail(where, "'" .. name .. "': " .. why, 3) end
  return v:upper()
end

--- A list of ids (or one id), checked.
-- @string where
-- @param ids
-- @treturn table
function M.ids(where, ids)
  if integer(ids) then ids = { ids } end
  if type(ids) ~= "table" or ids[1] == nil then fail(where, "'item_ids' must be a non-empty list of item ids", 3) end
  for i, id in ipairs(ids) do M.id(where, "item_ids[" .. i .. "]", id) end
  return ids
end

--- A list of countries (`"US,DE"` or `{"US", "DE"}`) checked (two letters
-- each; raises naming `where` otherwise), upper-cased, without repeats.
-- @string where the caller's name, for the message
-- @param countries
-- @tparam[opt] boolean optional nil is allowed (and returned)
-- @treturn table
function M.countries(where, countries, optional)
  if countries == nil and optional then return nil end
  if type(countries) == "string" then
    local list = {}
    for c in countries:gmatch("[^,%s]+") do list[#list + 1] = c end
    countries = list
  end
  if type(countries) ~= "table" or countries[1] == nil then
    fail(where, "'countries' must be a non-empty list of two-letter country codes", 3)
  end
  local out, seen = {}, {}
  for i, c in ipairs(countries) do
    c = M.country(where, "countries[" .. i .. "]", c)
    if not seen[c] then seen[c] = true; out[#out + 1] = c end
  end
  return out
end

--- `opts` (or `{}` when nil); raises when it is not a table.
-- @string where
-- @param opts
-- @treturn table
function M.opts(where, opts)
  if opts ~= nil and type(opts) ~= "table" then fail(where, "'opts' must be a table", 3) end
  return opts or {}
end

--- `opts.chunk` or `default`, an integer from 1 to `MAX_PER_REQUEST`; raises otherwise.
-- @string where
-- @tparam table opts
-- @int default
-- @treturn int
function M.chunk(where, opts, default)
  local n = opts.chunk or default
  if not integer(n) or n > M.MAX_PER_REQUEST then
    fail(where, "'chunk' must be an integer from 1 to " .. M.MAX_PER_REQUEST .. " (got " .. tostring(n) .. ")", 3)
  end
  return n
end

--- `v` when it is a non-empty string, else raises naming `name`.
-- @string where
-- @string name
-- @param v
-- @treturn string
function M.text(where, name, v)
  if type(v) ~= "string" or v == "" then fail(where, "'" .. name .. "' must be a string", 3) end
  return v
end

return M
