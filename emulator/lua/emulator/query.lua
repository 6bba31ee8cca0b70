-- AvaTax list queries over a list of records: `$filter`, `$orderBy`, `$top`
-- and `$skip` (docs/api-contracts.md section 4, Avalara's "Filtering in REST").
-- Pure Lua, so it runs inside nginx and under busted alike.
--
--   local query = require "emulator.query"
--   local q, err = query.parse(args, FIELDS)   -- args: the query string, keys decoded
--   local page, count = query.run(q, records)
--
-- Errors are {code, args} for emulator.errors: MalformedFilterException,
-- InvalidQueryField, FieldNotQueryableError, FieldNotOrderableError,
-- InvalidQueryValue, QueryParameterOutOfRange.
--
-- Filters: comparisons `eq`/`=`, `ne`/`!=`/`<>`, `gt`/`>`, `ge`/`>=`,
-- `lt`/`<`, `le`/`<=`, and `contains`, `startswith`, `endswith`,
-- `between A and B`, `in (A, B, ...)`, `is null`, `is not null`; `and`, `or`,
-- `not` and parentheses. Values are quoted strings ('x' or "x", a doubled
-- quote inside), numbers, or bare words (taken as strings). String
-- comparisons ignore case (AvaTax filters run against normalized data).
local M = {}

M.MAX_TOP = 1000
M.MAX_SKIP = 2147483647

-- ------------------------------------------------------------------ tokens

local KEYWORDS = {
  ["and"] = true, ["or"] = true, ["not"] = true, eq = true, ne = true, gt = true, ge = true, lt = true,
  le = true, contains = true, startswith = true, endswith = true, between = true, ["in"] = true,
  is = true, null = true,
}
local SYMBOLS = { ["="] = "eq", ["!="] = "ne", ["<>"] = "ne", [">="] = "ge", ["<="] = "le", [">"] = "gt",
  ["<"] = "lt" }

local function malformed(why)
  return nil, { code = "MalformedFilterException", args = { why } }
end

-- Tokens: {kind = "word"|"string"|"number"|"op"|"(" |")"|",", text, lower}.
local function tokenize(s)
  local out, i, n = {}, 1, #s
  while i <= n do
    local c = s:sub(i, i)
    if c:match("%s") then
      i = i + 1
    elseif c == "(" or c == ")" or c == "," then
      out[#out + 1] = { kind = c, text = c }
      i = i + 1
    elseif c == "'" or c == '"' then
      local buf, j = {}, i + 1
      while true do
        local q = s:find(c, j, true)
        if not q then return malformed("a quoted value is not closed at position " .. i) end
        buf[#buf + 1] = s:sub(j, q - 1)
        if s:sub(q + 1, q + 1) == c then
          buf[#buf + 1] = c
          j = q + 2
        else
          i = q + 1
          break
        end
      end
      out[#out + 1] = { kind = "string", text = table.concat(buf) }
    else
      local sym = SYMBOLS[s:sub(i, i + 1)] and s:sub(i, i + 1) or (SYMBOLS[c] and c)
      if sym then
        out[#out + 1] = { kind = "op", text = sym, lower = SYMBOLS[sym] }
        i = i + #sym
      else
        local word = s:match("^[^%s%(%),'\"=!<>]+", i)
        if not word then return malformed("unexpected '" .. c .. "' at position " .. i) end
        local kind = word:match("^%-?%d+%.?%d*$") and "number" or "word"
        out[#out + 1] = { kind = kind, text = word, lower = word:lower() }
        i = i + #word
      end
    end
  end
  return out
end

-- ------------------------------------------------------------------ parser

local COMPARE = { eq = true, ne = true, gt = true, ge = true, lt = true, le = true, contains = true,
  startswith = true, endswith = true }

local Parser = {}
Parser.__index = Parser

function Parser:peek() return self.tokens[self.pos] end
function Parser:next()
  local t = self.tokens[self.pos]
  self.pos = self.pos + 1
  return t
end
function Parser:keyword(word)
  local t = self:peek()
  if t and t.kind == "word" and t.lower == word then self.pos = self.pos + 1; return true end
  return false
end
function Parser.fail(_, why)
  error({ code = "MalformedFilterException", args = { why } }, 0)
end
function Parser:expect(kind, what)
  local t = self:next()
  if not t or t.kind ~= kind then
    self:fail("expected " .. what .. (t and " before '" .. t.text .. "'" or " at the end"))
  end
  return t
end

-- A field name, resolved against the route's fields (case-insensitive).
function Parser:field()
  local t = self:next()
  if not t or t.kind ~= "word" or KEYWORDS[t.lower] then
    self:fail("expected a field name" .. (t and " before '" .. t.text .. "'" or " at the end"))
  end
  local f = self.fields.by_lower[t.lower]
  if not f then
    if self.fields.not_filterable[t.lower] then
      error({ code = "FieldNotQueryableError", args = { t.text, self.source } }, 0)
    end
    error({ code = "InvalidQueryField", args = { t.text } }, 0)
  end
  return f
end

-- A literal value, checked against the field's type.
function Parser:value(field)
  local t = self:next()
  if not t or not (t.kind == "string" or t.kind == "number" or (t.kind == "word" and not KEYWORDS[t.lower])) then
    self:fail("expected a value" .. (t and " before '" .. t.text .. "'" or " at the end"))
  end
  if field.type == "number" then
    local v = tonumber(t.text)
    if not v then error({ code = "InvalidQueryValue", args = { field.name, "Int64", t.text } }, 0) end
    return v
  end
  return t.text:lower()
end

function Parser:comparison()
  local field = self:field()
  if self:keyword("is") then
    local negate = self:keyword("not")
    if not self:keyword("null") then self:fail("expected null after 'is'") end
    return { op = negate and "notnull" or "null", field = field }
  end
  if self:keyword("between") then
    local lo = self:value(field)
    if not self:keyword("and") then self:fail("expected 'and' in 'between'") end
    return { op = "between", field = field, value = lo, value2 = self:value(field) }
  end
  if self:keyword("in") then
    self:expect("(", "'(' after 'in'")
    local list = { self:value(field) }
    while self:peek() and self:peek().kind == "," do
      self:next()
      list[#list + 1] = self:value(field)
    end
    self:expect(")", "')' closing 'in'")
    return { op = "in", field = field, list = list }
  end
  local t = self:next()
  local op = t and (t.kind == "op" or t.kind == "word") and t.lower
  if not (op and COMPARE[op]) then
    self:fail("expected an operator after '" .. field.name .. "'" .. (t and " before '" .. t.text .. "'" or ""))
  end
  return { op = op, field = field, value = self:value(field) }
end

function Parser:factor()
  if self:keyword("not") then return { op = "not", a = self:factor() } end
  local t = self:peek()
  if t and t.kind == "(" then
    self:next()
    local e = self:expr()
    self:expect(")", "')'")
    return e
  end
  return self:comparison()
end

function Parser:term()
  local e = self:factor()
  while self:keyword("and") do e = { op = "and", a = e, b = self:factor() } end
  return e
end

function Parser:expr()
  local e = self:term()
  while self:keyword("or") do e = { op = "or", a = e, b = self:term() } end
  return e
end

local function parse_filter(source, fields)
  local tokens, terr = tokenize(source)
  if not tokens then return nil, terr end
  if #tokens == 0 then return nil end
  local p = setmetatable({ tokens = tokens, pos = 1, fields = fields, source = source }, Parser)
  local ok, tree = pcall(function()
    local e = p:expr()
    if p:peek() then p:fail("unexpected '" .. p:peek().text .. "'") end
    return e
  end)
  if not ok then
    if type(tree) == "table" then return nil, tree end
    error(tree, 0)
  end
  return tree
end

-- ------------------------------------------------------------------ evaluation

local function get(rec, field)
  local v = rec[field.name]
  if v == nil then return nil end
  if field.type == "string" then return tostring(v):lower() end
  return v
end

local function match(e, rec)
  local op = e.op
  if op == "and" then return match(e.a, rec) and match(e.b, rec) end
  if op == "or" then return match(e.a, rec) or match(e.b, rec) end
  if op == "not" then return not match(e.a, rec) end
  local v = get(rec, e.field)
  if op == "null" then return v == nil end
  if op == "notnull" then return v ~= nil end
  if v == nil then return false end
  local x = e.value
  if op == "eq" then return v == x end
  if op == "ne" then return v ~= x end
  if op == "gt" then return v > x end
  if op == "ge" then return v >= x end
  if op == "lt" then return v < x end
  if op == "le" then return v <= x end
  if op == "between" then return v >= x and v < e.value2 end
  if op == "in" then
    for _, y in ipairs(e.list) do if v == y then return true end end
    return false
  end
  local s = tostring(v)
  if op == "contains" then return s:find(x, 1, true) ~= nil end
  if op == "startswith" then return s:sub(1, #x) == x end
  if op == "endswith" then return x == "" or s:sub(-#x) == x end
  return false
end

-- ------------------------------------------------------------------ the query

-- `fields`: {name = "string"|"number"} of the filterable and orderable
-- fields, and `not_filterable`: names the route documents as such.
local function field_index(fields, not_filterable)
  local by_lower, nf = {}, {}
  for name, ty in pairs(fields) do by_lower[name:lower()] = { name = name, type = ty } end
  for _, name in ipairs(not_filterable or {}) do nf[name:lower()] = true end
  return { by_lower = by_lower, not_filterable = nf }
end

local function integer_param(args, name, max)
  local raw = args[name]
  if raw == nil or raw == "" then return nil end
  local n = tonumber(raw)
  if not n or n < 0 or n ~= math.floor(n) or not tostring(raw):match("^%s*%d+%s*$") then
    return nil, { code = "QueryParameterOutOfRange", args = { name, raw, 0, max } }
  end
  return n
end

local function parse_order(source, fields)
  local keys = {}
  for part in (source .. ","):gmatch("([^,]*),") do
    local name, dir = part:match("^%s*(%S+)%s*(%a*)%s*$")
    if name then
      local f = fields.by_lower[name:lower()]
      local d = dir:lower()
      if not f or not (d == "" or d == "asc" or d == "desc") then
        local shown = dir ~= "" and (name .. " " .. dir) or name
        if f == nil and fields.not_filterable[name:lower()] then
          return nil, { code = "FieldNotOrderableError", args = { name, source } }
        end
        return nil, { code = "InvalidQueryField", args = { shown } }
      end
      keys[#keys + 1] = { field = f, desc = d == "desc" }
    elseif part:match("%S") then
      return nil, { code = "InvalidQueryField", args = { part } }
    end
  end
  return keys
end

--- The query parameters (ngx.req.get_uri_args) by lower-case name, the
-- first value of a repeated one, "" for one without a value.
function M.args(raw_args)
  local args = {}
  for k, v in pairs(raw_args or {}) do
    if type(v) == "table" then v = v[1] end
    if v == true then v = "" end
    if type(k) == "string" then args[k:lower()] = v end
  end
  return args
end

--- Reads `$top`, `$skip`, `$filter` and `$orderBy` (keys any case, already
-- percent-decoded, so `%24top` arrives as `$top`). Returns the query
-- {top, skip, filter, order, given = {top, filter, orderBy}} or nil, err.
function M.parse(raw_args, fields, not_filterable)
  local args = M.args(raw_args)
  local idx = field_index(fields, not_filterable)
  local top, err = integer_param(args, "$top", M.MAX_TOP)
  if err then return nil, err end
  local skip
  skip, err = integer_param(args, "$skip", M.MAX_SKIP)
  if err then return nil, err end
  local q = { top = (top == nil or top == 0 or top > M.MAX_TOP) and M.MAX_TOP or top, skip = skip or 0,
    given = { top = top, filter = args["$filter"], orderBy = args["$orderby"] } }
  if args["$filter"] and args["$filter"]:match("%S") then
    q.filter, err = parse_filter(args["$filter"], idx)
    if err then return nil, err end
  end
  if args["$orderby"] and args["$orderby"]:match("%S") then
    q.order, err = parse_order(args["$orderby"], idx)
    if err then return nil, err end
  end
  return q
end

--- Filters, orders and pages `records`: returns the page and the number
-- of records that matched before paging (`@recordsetCount`).
function M.run(q, records)
  local matched = {}
  for i, rec in ipairs(records) do
    if not q.filter or match(q.filter, rec) then matched[#matched + 1] = { rec = rec, i = i } end
  end
  if q.order and #q.order > 0 then
    table.sort(matched, function(a, b)
      for _, key in ipairs(q.order) do
        local x, y = get(a.rec, key.field), get(b.rec, key.field)
        if x ~= y then
          if x == nil then return not key.desc end
          if y == nil then return key.desc end
          if key.desc then return x > y end
          return x < y
        end
      end
      return a.i < b.i
    end)
  end
  local page = {}
  for k = q.skip + 1, math.min(#matched, q.skip + q.top) do page[#page + 1] = matched[k].rec end
  return page, #matched
end

return M
