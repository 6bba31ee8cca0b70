--- The one table of API paths (docs/design.md section 4).
--
-- Every path of the HS classification and definitions API and of the AvaTax
-- Items flow the client calls (docs/api-contracts.md sections 2.1 to 2.8).
-- `{name}` placeholders are filled by `paths.build`, each value
-- percent-encoded as one path segment (RFC 3986: a classification id
-- `1001-A/B-US` goes as `1001-A%2FB-US`); an `{itemCode}` is first encoded
-- as Avalara publishes (`paths.item_code`: `A/B` goes as `A_-ava2f-_B`).
-- The literal `$` of the Items paths goes as is, as the JS SDK sends it.
-- Change this table when the real service differs.
-- @module avalara.paths
local M = {}

--- Path templates by route name; `{name}` placeholders are filled by `paths.build`.
M.templates = {
  classification_create = "/api/v2/companies/{companyId}/classifications/hs",
  classification_get = "/api/v2/companies/{companyId}/classifications/hs/{id}",
  classification_put = "/api/v2/companies/{companyId}/classifications/hs/{id}",
  definitions_sections = "/api/v2/definitions/crossborder/sections",
  definitions_children = "/api/v2/definitions/crossborder/{country}/{hsCode}",
  definitions_hierarchy = "/api/v2/definitions/crossborder/{country}/{hsCode}/hierarchy",
  -- the AvaTax REST API (its own base URL: `items_base`)
  items = "/api/v2/companies/{companyId}/items",
  item = "/api/v2/companies/{companyId}/items/{itemId}",
  item_classifications = "/api/v2/companies/{companyId}/items/{itemId}/classifications",
  item_classification = "/api/v2/companies/{companyId}/items/{itemId}/classifications/{id}",
  hscode_initiate = "/api/v2/companies/{companyId}/items/$initiate-hscode-classification",
  hscode_sla = "/api/v2/companies/{companyId}/items/hscode-classification/$get-sla",
  hscode_verify = "/api/v2/companies/{companyId}/items/hscodes/$verify",
  hscode_dismiss = "/api/v2/companies/{companyId}/items/{itemId}/hscode-classifications-status/$dismiss",
  hscode_status = "/api/v2/companies/{companyId}/items/{itemId}/hscode-classifications-status/{id}",
  premium_classification = "/api/v2/companies/{companyId}/items/{itemCode}/premiumClassification/{systemCode}",
  premium_classifications = "/api/v2/companies/{companyId}/items/{itemCode}/premiumClassifications",
  hscode_statuses = "/api/v2/definitions/items/hscode-classification-status",
  item_events = "/api/v2/definitions/items/events",
  registrations = "/api/v2/connector-sync/companies/{companyId}/registrations",
  registration = "/api/v2/connector-sync/companies/{companyId}/registrations/{registrationId}",
}

--- Percent-encodes everything but RFC 3986's unreserved characters (as
-- JavaScript's `encodeURIComponent`, which the AvaTax SDKs use): one path
-- segment or query value.
-- @string v
-- @treturn string
function M.encode(v)
  v = tostring(v)
  if not v:find("[^%w%-%._~]") then return v end -- the usual id: nothing to encode
  return (v:gsub("[^%w%-%._~]", function(c) return string.format("%%%02X", c:byte()) end))
end
local encode = M.encode

-- Avalara's tokens for the characters an item code cannot carry in a path
-- (docs/api-contracts.md section 6); "%" first, so the others' "%"s are not encoded twice.
local ITEM_CODE_TOKENS = { { "%%", "_-ava25-_" }, { "/", "_-ava2f-_" }, { "%+", "_-ava2b-_" },
  { "%?", "_-ava3f-_" }, { "#", "_-ava23-_" }, { "'", "_-ava27-_" }, { '"', "_-ava22-_" } }

--- Encodes an item code for a path segment as Avalara publishes it:
-- `%` `/` `+` `?` `#` `'` `"` become `_-ava25-_`, `_-ava2f-_`, ... (the
-- `%` first); `paths.build` then percent-encodes what is left (a space as `%20`).
-- @string code
-- @treturn string
function M.item_code(code)
  code = tostring(code)
  for _, t in ipairs(ITEM_CODE_TOKENS) do code = code:gsub(t[1], t[2]) end
  return code
end

-- Segments encoded lately, by value: a client asks for the same company and
-- ids again and again, and Lua's pattern classes cost ~300 instructions a
-- byte. Bounded: emptied when it holds 512 values.
local function memo(encode_one)
  local cache, n = {}, 0
  return function(v)
    local e = cache[v]
    if e then return e end
    e = encode_one(v)
    if n >= 512 then cache, n = {}, 0 end
    cache[v], n = e, n + 1
    return e
  end
end

local function number_or_string(v)
  -- an integral number as digits (Lua 5.4 writes a float 12.0 as "12.0")
  if type(v) == "number" and v == math.floor(v) then v = string.format("%d", v) end
  return encode(v)
end
local segment = memo(number_or_string)
local item_segment = memo(function(v) return encode(M.item_code(v)) end)

-- A template split once into its literal parts and placeholder names:
-- { "/api/v2/companies/", "companyId", "/classifications/hs/", "id", "" }
-- (odd indexes literal, even indexes names).
local function split(tpl)
  local parts, at = {}, 1
  for s, name, e in tpl:gmatch("(){(%w+)}()") do
    parts[#parts + 1] = tpl:sub(at, s - 1)
    parts[#parts + 1] = name
    at = e
  end
  parts[#parts + 1] = tpl:sub(at)
  return parts
end

-- A builder for one template: the parts joined by one concatenation (no
-- table, no gsub on every call; up to three placeholders, the most a route has).
local function compile(name, tpl)
  local parts = split(tpl)
  local function value(vars, i)
    local k = parts[i]
    local v = vars and vars[k]
    if v == nil then error("avalara.paths: '" .. name .. "' needs '" .. k .. "'", 3) end
    return (k == "itemCode" and item_segment or segment)(v)
  end
  local n = (#parts - 1) / 2
  local p1, p3, p5, p7 = parts[1], parts[3], parts[5], parts[7]
  if n == 0 then return function() return tpl end end
  if n == 1 then return function(vars) return p1 .. value(vars, 2) .. p3 end end
  if n == 2 then return function(vars) return p1 .. value(vars, 2) .. p3 .. value(vars, 4) .. p5 end end
  assert(n == 3, "avalara.paths: more than 3 placeholders in " .. name)
  return function(vars) return p1 .. value(vars, 2) .. p3 .. value(vars, 4) .. p5 .. value(vars, 6) .. p7 end
end

local builders = {}

--- Builds the path named `name` with the placeholder values of `vars`.
-- Raises when the name is unknown or a placeholder has no value.
-- @string name a key of `paths.templates`
-- @tparam table vars placeholder values
-- @treturn string the path
function M.build(name, vars)
  local tpl = M.templates[name]
  if not tpl then error("avalara.paths: unknown path '" .. tostring(name) .. "'", 2) end
  local b = builders[name]
  if not b or b[1] ~= tpl then b = { tpl, compile(name, tpl) }; builders[name] = b end
  return b[2](vars)
end

return M
