--- Which column of a catalog file (or key of a JSON object) fills which
-- field of an item: by name, compared without case, spaces, `_` and `-`
-- (`item_code`, `Item Code` and `itemCode` are one), or by a mapping the
-- user gives, such as a Shopify export's:
--
--    local columns = require "avalara.hs.columns"
--    local map = assert(columns.mapping("itemCode=Variant SKU,description=Title", fields))
--    local index = assert(columns.index(header, map, fields))   -- field -> column number
--
-- A mapping is text, `FIELD=COLUMN,FIELD=COLUMN,...` (the CLI's `--map`), or
-- a table `{FIELD = COLUMN}`. In the text, a `,`, `=` or `\` that is part of
-- a column name is written `\,`, `\=` or `\\` (`description=Size\, cm`); spaces
-- around a name are kept out. The fields are compared as column names are;
-- a column is named exactly, or else as names are compared. A mapped field
-- takes its column only (a column of the field's own name is then ignored);
-- the other fields keep their names.
-- @module avalara.hs.columns

local M = {}

--- A column name as compared: lower case, without spaces, `_` and `-`.
-- @string name
-- @treturn string
function M.normal(name)
  return (tostring(name):lower():gsub("[%s_%-]", ""))
end

-- The names of `fields` (`{normal name = field}`), in order, for messages.
local function names(fields)
  local list, seen = {}, {}
  for _, f in pairs(fields) do
    if not seen[f] then seen[f] = true; list[#list + 1] = f end
  end
  table.sort(list)
  return table.concat(list, ", ")
end

local function trim(s)
  return (s:gsub("^%s+", ""):gsub("%s+$", ""))
end

-- Splits `text` at the unescaped `sep` characters, undoing the escapes.
local function split(text, sep)
  local parts, cur, i = {}, {}, 1
  while i <= #text do
    local c = text:sub(i, i)
    if c == "\\" and i < #text then
      cur[#cur + 1] = "\\" .. text:sub(i + 1, i + 1) -- kept escaped until the last split
      i = i + 2
    else
      if c == sep then parts[#parts + 1] = table.concat(cur); cur = {} else cur[#cur + 1] = c end
      i = i + 1
    end
  end
  parts[#parts + 1] = table.concat(cur)
  return parts
end

local function unescape(s)
  return (s:gsub("\\(.)", "%1"))
end

--- Parses `FIELD=COLUMN,...` into pairs, in order, with the escapes undone.
-- @string text
-- @return a list of `{field, column}`, or nil and a message naming what is wrong
function M.parse(text)
  if type(text) ~= "string" then error("avalara.hs.columns.parse: 'text' must be a string", 2) end
  local out = {}
  for _, part in ipairs(split(text, ",")) do
    if part:find("%S") then
      local pair = split(part, "=")
      if #pair ~= 2 then
        return nil, "'" .. unescape(trim(part)) .. "' is not FIELD=COLUMN (write a ',', '=' or '\\' of a "
          .. "column name as \\, \\= or \\\\)"
      end
      local field, column = unescape(trim(pair[1])), unescape(trim(pair[2]))
      if field == "" or column == "" then
        return nil, "'" .. unescape(trim(part)) .. "' is not FIELD=COLUMN (a name is empty)"
      end
      out[#out + 1] = { field, column }
    end
  end
  if #out == 0 then return nil, "no FIELD=COLUMN pair" end
  return out
end

--- A mapping checked against the fields a reader knows: `{field = column}`
-- with each field's own spelling, or nil and a message naming the unknown
-- field (and the known ones), a field mapped twice, or an empty name.
-- @param map text (`parse`) or a table `{FIELD = COLUMN}`
-- @tparam table fields `{normal name = field}`: what the reader fills (`{itemcode = "itemCode", ...}`)
-- @return the mapping, or nil, message
function M.mapping(map, fields)
  if type(fields) ~= "table" then error("avalara.hs.columns.mapping: 'fields' must be a table", 2) end
  local pairs_list = map
  if type(map) == "string" then
    local why
    pairs_list, why = M.parse(map)
    if not pairs_list then return nil, why end
  elseif type(map) == "table" then
    pairs_list = {}
    for f, c in pairs(map) do
      if type(f) ~= "string" or type(c) ~= "string" or c == "" then
        return nil, "a mapping is {FIELD = COLUMN}, both names strings"
      end
      pairs_list[#pairs_list + 1] = { f, c }
    end
    table.sort(pairs_list, function(a, b) return a[1] < b[1] end)
  else
    error("avalara.hs.columns.mapping: 'map' must be text or a table", 2)
  end
  local out, unknown = {}, {}
  for _, p in ipairs(pairs_list) do
    local field = fields[M.normal(p[1])]
    if not field then
      unknown[#unknown + 1] = "'" .. p[1] .. "'"
    elseif out[field] then
      return nil, "the field " .. field .. " is mapped twice"
    else
      out[field] = p[2]
    end
  end
  if #unknown > 0 then
    return nil, string.format("unknown field%s %s (the fields: %s)", #unknown == 1 and "" or "s",
      table.concat(unknown, ", "), names(fields))
  end
  return out
end

-- The column of `header` named `name`: exactly, else compared as names are.
local function find(header, name)
  for c, title in ipairs(header) do
    if title == name then return c end
  end
  local n = M.normal(name)
  for c, title in ipairs(header) do
    if M.normal(title) == n then return c end
  end
end

--- The column of each field in a header: `{field = column number}`; mapped
-- fields take their columns, the others the first column of their name not
-- taken by a mapping. Nil and a message naming every mapped column the
-- header lacks (and what it has).
-- @tparam table header the column names
-- @tparam[opt] table map a checked mapping (`mapping`)
-- @tparam table fields `{normal name = field}`
-- @return the index, or nil, message
function M.index(header, map, fields)
  local index, taken, missing = {}, {}, {}
  for field, column in pairs(map or {}) do
    local c = find(header, column)
    if c then
      index[field], taken[c] = c, true
    else
      missing[#missing + 1] = "'" .. column .. "' (for " .. field .. ")"
    end
  end
  if #missing > 0 then
    table.sort(missing)
    return nil, string.format("no column %s; the header has: %s", table.concat(missing, ", "),
      table.concat(header, ", "))
  end
  for c, title in ipairs(header) do
    local field = fields[M.normal(title)]
    if field and not index[field] and not taken[c] and not (map and map[field]) then index[field] = c end
  end
  return index
end

--- The fields of a JSON object: `{field = value}`, each mapped field from its
-- key (exactly, else compared as names are), the others from the keys of
-- their names. Values are kept as they are (the caller checks their types).
-- @tparam table object
-- @tparam[opt] table map a checked mapping (`mapping`)
-- @tparam table fields `{normal name = field}`
-- @treturn table
function M.pick(object, map, fields)
  local out, taken = {}, {}
  for field, key in pairs(map or {}) do
    local v = object[key]
    if v == nil then
      local n = M.normal(key)
      for k, kv in pairs(object) do
        if type(k) == "string" and M.normal(k) == n then v, key = kv, k; break end
      end
    end
    out[field], taken[key] = v, true
  end
  for k, v in pairs(object) do
    local field = type(k) == "string" and fields[M.normal(k)]
    if field and not taken[k] and not (map and map[field]) and out[field] == nil then out[field] = v end
  end
  return out
end

return M
