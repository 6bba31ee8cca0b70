--- Catalog files (`avalara.items.catalog.read`, `client:classify_catalog`,
-- `hscode items classify`): CSV with a header row (its delimiter detected or
-- given), a JSON array of objects, or JSON Lines; columns found by name or
-- by a mapping (`avalara.hs.columns`); descriptions made plain text and,
-- when asked, cut to the service's limit (`avalara.hs.text`).
-- @module avalara.items.reader
local core = require "avalara.core"
local cjson = require "cjson.safe"
local csv = require "avalara.csv"
local model = require "avalara.items.model"
local columns = require "avalara.hs.columns"
local text_of = require "avalara.hs.text"

local M = {}

--- The columns (or JSON keys) of a catalog file, matched ignoring case,
-- spaces, `_` and `-`: the `ItemModel` field each one fills.
M.COLUMNS = { itemcode = "itemCode", description = "description", summary = "summary", itemgroup = "itemGroup",
  category = "category", taxcode = "taxCode", upc = "upc" }

-- An item from a record (`{column = value}`): fields by column (or `ro.map`),
-- `where` naming its place; HTML made plain text (unless `ro.keep_html`), a
-- description cut to the limit (`ro.truncate`: `truncated` set, counted in `ro.cut`).
local function item_of(fields, where, ro)
  local it = { where = where }
  for key, v in pairs(columns.pick(fields, ro.map, M.COLUMNS)) do
    if type(v) == "number" then v = string.format("%.14g", v) end
    if type(v) == "string" and v ~= "" then it[key] = v end
  end
  it.truncated = text_of.clean(it, { keep_html = ro.keep_html, truncate = ro.truncate and model.LIMITS.description })
    or nil
  if it.truncated then ro.cut = ro.cut + 1 end
  return it
end

-- A failure of `read`: kind "input", naming the file (`path`) and, when
-- known, the line (`row`); `code` the CSV reader's (`syntax`, `too_long`).
local function bad(path, message, row, code)
  return nil, core.error { kind = "input", message = message, path = path, row = row, code = code,
    retryable = false }
end

local function csv_items(text, path, ro)
  local records, err = csv.parse(text, { delimiter = ro.delimiter or "auto" })
  if not records then return bad(path, path .. ": " .. err.message, err.row, err.code) end
  local header = records[1]
  if not header then return bad(path, path .. ": the file is empty") end
  local index, ierr = columns.index(header, ro.map, M.COLUMNS)
  if not index then return bad(path, path .. ": " .. ierr, 1, "map") end
  for _, required in ipairs { "itemCode", "description" } do
    if not index[required] then
      return bad(path, string.format("%s: no '%s' column (the header has: %s)", path, required,
        table.concat(header, ", ")), 1)
    end
  end
  -- the record as {field = value} through the index: the mapping is applied once
  local plain = { map = nil, keep_html = ro.keep_html, truncate = ro.truncate, cut = 0 }
  local list = {}
  for r = 2, #records do
    local fields, filled = {}, false
    for field, c in pairs(index) do fields[field] = records[r][c] end
    for _, v in ipairs(records[r]) do filled = filled or v:find("%S") ~= nil end
    if filled then list[#list + 1] = item_of(fields, path .. " line " .. records[r].line, plain) end
  end
  ro.cut = plain.cut
  return list, header
end

-- The reading options, checked: `{map = checked mapping, delimiter, keep_html, truncate, cut = 0}`.
local function read_options(opts)
  if opts ~= nil and type(opts) ~= "table" then error("avalara.items.catalog.read: 'opts' must be a table", 3) end
  opts = opts or {}
  local ro = { keep_html = opts.keep_html and true or false, truncate = opts.truncate and true or false, cut = 0 }
  if opts.map ~= nil then
    local map, why = columns.mapping(opts.map, M.COLUMNS)
    if not map then return nil, why end
    ro.map = map
  end
  if opts.delimiter ~= nil and opts.delimiter ~= "auto" then
    local d, why = csv.delimiter(opts.delimiter)
    if not d then return nil, why end
    ro.delimiter = d
  end
  return ro
end

--- Reads a catalog file: CSV with a header row, (`.json`) an array of objects, or (`.jsonl`)
-- one object a line; columns as in `catalog.COLUMNS` (`itemCode` and `description` required),
-- or as `opts.map` names them. The CSV delimiter is the one the header line has most of (`,` `;`
-- or tab: `avalara.csv.detect`) unless `opts.delimiter` says. HTML in descriptions and summaries is
-- made plain text (`avalara.hs.text.strip_html`) unless `opts.keep_html`; with `opts.truncate`, a
-- description longer than the service takes (255 characters) is cut there (on a UTF-8 character
-- boundary) and the item gets `truncated = true`, instead of being refused later.
-- @string path
-- @tparam[opt] table opts `{map = "FIELD=COLUMN,..." or {FIELD = COLUMN} (`avalara.hs.columns`; the
-- fields: `catalog.COLUMNS`), delimiter = "," | ";" | "tab" | "auto", keep_html, truncate}`
-- @return a list of items (each with `where`, its line or index, for messages), and `{truncated = n}`;
-- or nil, err (kind "input", with `path`, and `row` when a line is at fault; its message names both;
-- a bad `map` or `delimiter`: its message, `code` "options"; a mapped column the header lacks: `code` "map")
function M.read(path, opts)
  if type(path) ~= "string" then error("avalara.items.catalog.read: 'path' must be a file's path", 2) end
  local ro, why = read_options(opts)
  if not ro then return nil, core.error { kind = "input", code = "options", message = why, retryable = false } end
  if not io then return bad(path, "reading a file needs the io library, which this Lua state (a sandbox?) does not "
    .. "have; classify the items as tables instead") end
  local f, oerr = io.open(path, "rb")
  if not f then return bad(path, "cannot read " .. tostring(oerr)) end
  local text = f:read("*a")
  f:close()
  local list, header
  if require("avalara.items.jsonl").named(path) then
    list, header = require("avalara.items.jsonl").items(text, path, function(v, where)
      return item_of(v, where, ro)
    end)
    if not list then return nil, header end -- header: the error
  elseif path:lower():match("%.json$") then
    local decoded = cjson.decode(text)
    if type(decoded) ~= "table" or (next(decoded) ~= nil and decoded[1] == nil) then
      return bad(path, path .. ": expected a JSON array of items")
    end
    list = {}
    for i, entry in ipairs(decoded) do
      if type(entry) ~= "table" then return bad(path, path .. " item " .. i .. ": not an object", i) end
      list[i] = item_of(entry, path .. " item " .. i, ro)
    end
  else
    list, header = csv_items(text, path, ro)
    if not list then return nil, header end -- header: the error
  end
  if #list == 0 then return bad(path, path .. ": no items") end
  return list, { truncated = ro.cut }
end

return M
