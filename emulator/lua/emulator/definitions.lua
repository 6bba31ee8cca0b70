-- HS definitions (docs/api-contracts.md sections 2.1 and 7): the 21 sections, the
-- next level below a section, chapter, heading or subheading, and the chain
-- from the root down to a code, each an AvaTax FetchResult of HsCodeModel
-- records. The children route pages, filters and orders (emulator.query).
local util = require "emulator.util"
local auth = require "emulator.auth"
local errors = require "emulator.errors"
local hs = require "emulator.hs"
local countries = require "emulator.countries"
local query = require "emulator.query"
local fetch = require "emulator.fetch"

local M = {}

-- What `$filter` and `$orderBy` accept on the children route, and the
-- fields the route documents as "Not filterable" (JS SDK L5773).
local FIELDS = { id = "number", hsCode = "string", parentHsCodeId = "number", description = "string" }
local NOT_FILTERABLE = { "hsCodeSource", "system", "destinationCountry", "isDecisionNode", "zeroPaddingCount",
  "isSystemDefined", "isTaxable", "effDate", "endDate", "hsCodeSourceLength" }

local fetch_result = fetch.send

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

-- The relative link to the next page, with the country in lower case as
-- the published example "/api/v2/definitions/crossborder/es/611710000?%24skip=0".
local function next_link(country, code, q, returned)
  return fetch.next_link("/api/v2/definitions/crossborder/" .. util.percent_encode(country:lower()) .. "/"
    .. util.percent_encode(code), q, returned)
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
