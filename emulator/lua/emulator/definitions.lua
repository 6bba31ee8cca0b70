-- HS definitions (avalara-api.md sections 2.1 and 7): the 21 sections, the
-- next level below a section, chapter, heading or subheading, and the chain
-- from the root down to a code, each an AvaTax FetchResult of HsCodeModel
-- records. The children route pages, filters and orders (emulator.query).
local util = require "emulator.util"
local auth = require "emulator.auth"
local errors = require "emulator.errors"
local hs = require "emulator.hs"
local countries = require "emulator.countries"
local query = require "emulator.query"

local M = {}

-- What `$filter` and `$orderBy` accept on the children route, and the
-- fields the route documents as "Not filterable" (JS SDK L5773).
local FIELDS = { id = "number", hsCode = "string", parentHsCodeId = "number", description = "string" }
local NOT_FILTERABLE = { "hsCodeSource", "system", "destinationCountry", "isDecisionNode", "zeroPaddingCount",
  "isSystemDefined", "isTaxable", "effDate", "endDate", "hsCodeSourceLength" }

-- {"@recordsetCount":N,"value":[…][,"@nextLink":"…"]} built by hand:
-- lua-cjson would encode an empty Lua table as an object.
local function fetch_result(values, count, next_link)
  local parts = {}
  for i, v in ipairs(values) do parts[i] = util.json_encode(v) end
  local body = '{"@recordsetCount":' .. count .. ',"value":[' .. table.concat(parts, ",") .. "]"
  if next_link then body = body .. ',"@nextLink":' .. util.json_encode(next_link) end
  return util.send(200, "application/json; charset=utf-8", body .. "}")
end

local function guard()
  local rec = auth.require_token()
  return rec and auth.rate_limit(rec)
end

-- The country's tariff system, or nil after sending 400 InvalidCountry.
local function system_of(country)
  local c = countries.find(country)
  if c then return countries.system(c.code) end
  errors.send(400, "InvalidCountry", { args = { country }, target = "IncorrectData" })
  return nil
end

local function not_found(code)
  return errors.send(404, "EntityNotFoundError", { args = { "HsCode", code, "hsCode" }, target = "HttpRequest" })
end

-- Section numerals are matched in any case ("xi" is XI); digits as sent.
local function code_of(raw)
  local up = raw:upper()
  if hs.is_section(up) then return up end
  return raw
end

-- The relative link to the page after `q` (avalara-api.md section 4: the
-- published example is "/api/v2/definitions/crossborder/es/611710000?%24skip=0",
-- a lower-cased country and %24-encoded keys). It is sent on every page,
-- the empty last one included; its $skip is this page's $skip plus the
-- records on it, so past the end it points at itself.
local function next_link(country, code, q, returned)
  local parts = { "%24skip=" .. (q.skip + returned) }
  if q.given.top then parts[#parts + 1] = "%24top=" .. q.given.top end
  if q.given.filter then parts[#parts + 1] = "%24filter=" .. util.percent_encode(q.given.filter) end
  if q.given.orderBy then parts[#parts + 1] = "%24orderBy=" .. util.percent_encode(q.given.orderBy) end
  return "/api/v2/definitions/crossborder/" .. util.percent_encode(country:lower()) .. "/"
    .. util.percent_encode(code) .. "?" .. table.concat(parts, "&")
end

-- GET /api/v2/definitions/crossborder/sections
function M.sections()
  if not guard() then return end
  local list = hs.sections()
  return fetch_result(list, #list)
end

-- GET /api/v2/definitions/crossborder/{country}/{hsCode}[?$top&$skip&$filter&$orderBy]
function M.children(ctx)
  if not guard() then return end
  local country, code = ctx.captures[1], code_of(ctx.captures[2])
  local system = system_of(country)
  if not system then return end
  local q, err = query.parse(ngx.req.get_uri_args(100), FIELDS, NOT_FILTERABLE)
  if not q then return errors.send(400, err.code, { args = err.args }) end
  local list = hs.children(code, system)
  if not list then return not_found(code) end
  local page, count = query.run(q, list)
  return fetch_result(page, count, next_link(country, code, q, #page))
end

-- GET /api/v2/definitions/crossborder/{country}/{hsCode}/hierarchy
function M.hierarchy(ctx)
  if not guard() then return end
  local country, code = ctx.captures[1], ctx.captures[2]
  local system = system_of(country)
  if not system then return end
  local list = hs.hierarchy(code, system)
  if not list then return not_found(code) end
  return fetch_result(list, #list)
end

return M
