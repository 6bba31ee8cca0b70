--- The input of `hscode batch`: a CSV file with a header row, a JSON array
-- of objects, or JSON Lines (one object a line), from a file or stdin (`-`).
-- Rows are read one at a time (a JSON array is read whole), checked as the
-- service would check them, and handed on with their original fields so that
-- the output keeps them.
--
-- A record (a CSV record, a JSON Lines line) longer than `input.max_record`
-- bytes (1 MiB unless the caller sets another limit, `--max-record-size`) is
-- refused, naming its line; CSV cells neutralised against formulas by our
-- writer (`'=...`) are read back without that quote (`avalara.csv`).
--
-- Real exports (the input's fields, set by `batch` from its options):
-- `map`, a mapping of columns to fields (`avalara.hs.columns`, `--map`);
-- `delimiter` (`,` `;` or a tab; nil: detected from the header line);
-- `keep_html` (else HTML in descriptions and summaries is made plain text,
-- `avalara.hs.text`); `truncate` (a description over the service's limit is
-- cut there, and marked `truncated`, instead of being a problem). A record
-- without a country is one row per country of the list `source` is given.
-- @module avalara.cli.input
local cjson = require "cjson"
local private = require "avalara.private"
local item_model = require "avalara.hs.item"
local countries = require "avalara.country"
local csv = require "avalara.csv"
local columns = require "avalara.hs.columns"
local html = require "avalara.hs.text"

local M = {}

local CHUNK = 65536

-- Column and key names, compared without case, spaces, dashes and underscores.
local ITEM_KEYS = { itemcode = "itemCode", description = "description", summary = "summary",
  itemgroup = "itemGroup", country = "country", countryofdestination = "country" }

--- The longest description the service takes, in characters (`--truncate` cuts there).
M.DESCRIPTION_LIMIT = item_model.LIMITS.description

--- The fields a column can fill, by their compared names (`avalara.hs.columns`): what `--map` may name.
M.FIELDS = ITEM_KEYS

--- A column name as compared: lower case, without spaces, `_` and `-`.
-- @string name
-- @treturn string
function M.normal(name)
  return columns.normal(name)
end

local function blank(record)
  for _, v in ipairs(record) do if v:find("%S") then return false end end
  return true
end

local Input = {}
Input.__index = Input

-- The first bytes say what the file is not: UTF-16 (a BOM, or NUL bytes).
local function sniff(head, name)
  if head:sub(1, 2) == "\255\254" or head:sub(1, 2) == "\254\255" then
    return nil, name .. " is UTF-16 (it starts with a UTF-16 byte order mark); save it as UTF-8, or convert "
      .. "it: iconv -f UTF-16 -t UTF-8 " .. name .. " > converted.csv"
  end
  if head:find("\0", 1, true) then
    return nil, name .. " has NUL bytes: it is UTF-16 without a byte order mark, or not text; save it as "
      .. "UTF-8, or convert it: iconv -f UTF-16LE -t UTF-8 " .. name .. " > converted.csv"
  end
  return true
end

--- Opens an input: `path`, or stdin for `-` (copied to a temporary file, read twice).
-- @string path
-- @param stdin the standard input handle (for `-`)
-- @return the input, or nil, message
function M.open(path, stdin)
  local self = setmetatable({ name = path == "-" and "stdin" or path }, Input)
  if path == "-" then
    -- a private folder of its own (0700, random name): no other user can
    -- read, replace or redirect the copy
    local dir, derr = private.temp_dir("hscode-stdin")
    if not dir then return nil, "cannot spool stdin: " .. derr.message end
    self.spool = dir
    self.path = dir .. "/stdin"
    local out, oerr = private.create(self.path, 384) -- 0600
    if not out then
      self:close()
      return nil, "cannot spool stdin: " .. oerr.message
    end
    while true do
      local chunk = stdin:read(CHUNK)
      if not chunk then break end
      out:write(chunk)
    end
    out:close()
  else
    self.path = path
  end
  local f, err = io.open(self.path, "rb")
  if not f then
    self:close()
    return nil, "cannot read " .. tostring(err)
  end
  local head, rerr = f:read(4096)
  if head == nil and rerr then
    f:close()
    self:close()
    return nil, "cannot read " .. path .. ": " .. tostring(rerr)
  end
  head = head or ""
  f:close()
  local ok, why = sniff(head, self.name)
  if not ok then self:close(); return nil, why end
  local lower = path:lower()
  if lower:match("%.jsonl$") or lower:match("%.ndjson$") then self.kind = "jsonl"
  elseif lower:match("%.json$") then self.kind = "json"
  elseif path == "-" then
    local c = head:gsub("^\239\187\191", ""):match("^%s*(.)")
    self.kind = c == "[" and "json" or c == "{" and "jsonl" or "csv"
  else
    self.kind = "csv"
  end
  return self
end

--- The largest record read, in bytes (a field of the input; `batch` sets it
-- from `--max-record-size`).
Input.max_record = csv.MAX_RECORD

--- Removes the spooled copy of stdin, if any.
function Input:close()
  if self.spool then
    private.remove_dir(self.spool, { "stdin" })
    self.spool = nil
  end
end

-- The lines of `f` (each with its "\n"), read in chunks, in time linear in
-- their length: nil at the end, false for a line longer than `max` bytes
-- (not read whole).
local function lines(f, max)
  local buf, pos, eof = "", 1, false -- buf: the current chunk; pos: its first byte not returned
  return function()
    if eof and pos > #buf then return nil end
    local parts, size = {}, 0
    while true do
      local nl = buf:find("\n", pos, true)
      local stop = nl or #buf
      size = size + stop - pos + 1
      if size > max then return false end
      parts[#parts + 1] = buf:sub(pos, stop)
      pos = stop + 1
      if nl then return table.concat(parts) end
      local chunk = not eof and f:read(CHUNK)
      if not chunk then
        eof, buf, pos = true, "", 1
        if size == 0 then return nil end
        return table.concat(parts)
      end
      buf, pos = chunk, 1
    end
  end
end

-- Raw records: an iterator of `fields, line, where` (fields: the CSV record,
-- or a decoded object), or raises a failure message through `bad(message)`.
function Input:_records(bad)
  local f = assert(io.open(self.path, "rb"))
  local name = self.name
  if self.kind == "csv" then
    local next_record = csv.reader(function() return f:read(CHUNK) end, { max_record = self.max_record,
      delimiter = self.delimiter or "auto" })
    local function failed(err)
      f:close()
      bad(name .. ": " .. err.message .. (err.code == "too_long" and " (raise the limit with --max-record-size)" or ""))
    end
    local header, herr = next_record()
    if not header then
      if herr then failed(herr) end
      f:close()
      bad(name .. ": the file is empty")
    end
    self.columns = {}
    for c, title in ipairs(header) do self.columns[c] = title end
    local index, ierr = columns.index(header, self.map, ITEM_KEYS)
    if not index then
      f:close()
      bad(name .. ": --map: " .. ierr)
    end
    self.index = index
    for _, required in ipairs { "itemCode", "description" } do
      if not self.index[required] then
        f:close()
        bad(string.format("%s: no '%s' column (the header has: %s)%s", name, required, table.concat(header, ", "),
          self.map and "" or "; name it with --map " .. required .. "=COLUMN"))
      end
    end
    return function()
      while true do
        local record, err = next_record()
        if not record then
          if err then failed(err) end
          f:close()
          return nil
        end
        if not blank(record) then return record, record.line, name .. " line " .. record.line end
      end
    end
  end
  self.columns, self.known = self.columns or {}, self.known or {}
  local function note_keys(obj)
    local fresh = {}
    for k in pairs(obj) do
      if type(k) == "string" and not self.known[k] then fresh[#fresh + 1] = k end
    end
    table.sort(fresh)
    for _, k in ipairs(fresh) do self.known[k] = true; self.columns[#self.columns + 1] = k end
  end
  if self.kind == "json" then
    local text = f:read("*a")
    f:close()
    local ok, decoded = pcall(cjson.decode, text)
    if not ok then bad(name .. ": not valid JSON (" .. tostring(decoded):gsub("^.-: ", "") .. ")") end
    if type(decoded) ~= "table" or (next(decoded) ~= nil and decoded[1] == nil) then
      bad(name .. ": expected a JSON array of items")
    end
    local i = 0
    return function()
      i = i + 1
      local entry = decoded[i]
      if entry == nil then return nil end
      if type(entry) == "table" then note_keys(entry) end
      return entry, i, name .. " item " .. i
    end
  end
  local line, max = 0, self.max_record
  local next_line = lines(f, max)
  return function()
    while true do
      local text = next_line()
      if text == nil then f:close(); return nil end
      line = line + 1
      if text == false then
        f:close()
        bad(string.format("%s: line %d: a line is longer than %d bytes (raise the limit with --max-record-size)",
          name, line, max))
      end
      if text:find("%S") then
        local ok, entry = pcall(cjson.decode, text)
        if not ok then entry = { _bad = "not valid JSON (" .. tostring(entry):gsub("^.-: ", "") .. ")" } end
        if type(entry) == "table" and not entry._bad then note_keys(entry) end
        return entry, line, name .. " line " .. line
      end
    end
  end
end

-- HTML made plain text (unless keep_html), a description cut to the limit (truncate).
function Input:_clean(item)
  item.truncated = html.clean(item, { keep_html = self.keep_html, truncate = self.truncate and M.DESCRIPTION_LIMIT })
    or nil
  return item
end

-- The item of a record: {itemCode, description, summary?, itemGroup?, country?, truncated?}.
function Input:_item(fields)
  local item = {}
  if self.kind == "csv" then
    for key, c in pairs(self.index) do
      local v = fields[c]
      if v and v ~= "" then item[key] = v end
    end
    return self:_clean(item)
  end
  for key, v in pairs(columns.pick(fields, self.map, ITEM_KEYS)) do
    if type(v) == "number" then v = string.format("%.14g", v) end
    if type(v) == "string" and v ~= "" then item[key] = v end
  end
  return self:_clean(item)
end

-- Whether `s` is UTF-8 (Lua 5.3+: utf8.len; LuaJIT and 5.1 have no utf8 library).
local function is_utf8(s)
  if not s:find("[\128-\255]") then return true end
  if utf8 and utf8.len then return utf8.len(s) ~= nil end
  local i, n = 1, #s
  while i <= n do
    local c = s:byte(i)
    local len = c < 0x80 and 1 or (c >= 0xC2 and c <= 0xDF) and 2 or (c >= 0xE0 and c <= 0xEF) and 3
      or (c >= 0xF0 and c <= 0xF4) and 4 or nil
    if not len then return false end
    for k = i + 1, i + len - 1 do
      local b = s:byte(k)
      if not b or b < 0x80 or b > 0xBF then return false end
    end
    i = i + len
  end
  return true
end

-- The fields of an item, in the order their problems are named.
local ITEM_FIELDS = { "itemCode", "description", "summary", "itemGroup", "country" }

-- What is wrong with a row, or nil: the text must be UTF-8 without NUL bytes
-- or control characters (tab and line breaks allowed); and the field at
-- fault (`itemCode`, ...), when there is one.
local function problem_of(item, fields, default_country, map)
  if type(fields) ~= "table" then return "not an object" end
  if fields._bad then return fields._bad end
  for _, key in ipairs(ITEM_FIELDS) do
    if item[key] and not is_utf8(item[key]) then
      return "not valid UTF-8: is the file Latin-1 or Windows-1252? Save it as UTF-8, or convert it: "
        .. "iconv -f WINDOWS-1252 -t UTF-8", key
    end
  end
  for _, key in ipairs(ITEM_FIELDS) do
    local v = item[key]
    if v and v:find("\0", 1, true) then
      return key .. " has a NUL byte: is the file text (UTF-8)?", key
    end
    local c = v and v:match("[\1-\8\11\12\14-\31\127]")
    if c then return string.format("%s has a control character (byte 0x%02X)", key, c:byte()), key end
  end
  for _, required in ipairs { "itemCode", "description" } do
    if not item[required] then
      return required .. " is empty" .. (map and map[required] and " (from '" .. map[required] .. "', --map)" or ""),
        required
    end
  end
  local ok, why = item_model.check { itemCode = item.itemCode, description = item.description,
    summary = item.summary, itemGroup = item.itemGroup }
  if not ok then return why.message, why.message:match("^'?(%a+)") end
  local country = item.country or default_country
  if not country then return "no country (add a country column or use --country)", "country" end
  local problem = countries.problem(country, { known = true })
  if problem then return problem, "country" end
  return nil
end

--- A source for `avalara.batch`: each call returns an iterator of `row,
-- item, problem`, over every non-blank record. `item` is `{itemCode,
-- description, summary?, itemGroup?, countryOfDestination, fields, where,
-- line, field?, truncated?}` (`fields`: the record as read; `line`: the file line where
-- the record starts, or a JSON array's index; `where`: the file and that
-- line; `truncated`: its description was cut); `problem` names what is wrong with a row (`field`: the field at
-- fault). A record without a country is one row per country of
-- `default_countries`, in their order (rows are numbered after that; one
-- row, for the first country, when the record is not valid). A file that
-- cannot be read at all raises a `avalara.cli.common` failure through `bad`.
-- @param[opt] default_countries a country code, or a list of them
-- @tparam function bad `(message)`: raises
-- @treturn function
function Input:source(default_countries, bad)
  local list = type(default_countries) == "table" and default_countries or { default_countries }
  local default_country = list[1]
  return function()
    local records = self:_records(bad)
    local row, pending = 0, {}
    return function()
      if #pending > 0 then
        row = row + 1
        return row, table.remove(pending, 1)
      end
      local fields, line, where = records()
      if fields == nil then return nil end
      row = row + 1
      local item = type(fields) == "table" and self:_item(fields) or {}
      local problem, field = problem_of(item, fields, default_country, self.map)
      local own = item.country
      item.countryOfDestination = (own or default_country or ""):upper()
      item.country, item.fields, item.where, item.line, item.field = nil, fields, where, line, field
      if not own and not problem then
        for k = 2, #list do
          local copy = {}
          for key, v in pairs(item) do copy[key] = v end
          copy.countryOfDestination = list[k]:upper()
          pending[#pending + 1] = copy
        end
      end
      return row, item, problem
    end
  end
end

--- The values of a row's original fields, aligned with `input.columns`.
-- @tparam table item an item from `source`
-- @treturn table
function Input:values(item)
  local fields, out = item.fields, {}
  if type(fields) ~= "table" then return out end
  for c, name in ipairs(self.columns or {}) do
    local v
    if self.kind == "csv" then v = fields[c] else v = fields[name] end
    if type(v) == "table" then v = cjson.encode(v) end
    if v == cjson.null then v = nil end
    out[c] = v
  end
  return out
end

return M
