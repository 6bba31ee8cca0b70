-- HS definitions: the 21 sections, the children of a code (chapters when
-- no code is given) and the chain of parents down to a code.
local util = require "emulator.util"
local auth = require "emulator.auth"
local hs = require "emulator.hs"

local M = {}

-- {"@recordsetCount":N,"value":[…]} built by hand: lua-cjson would encode an
-- empty Lua table as an object.
local function recordset(values)
  local parts = {}
  for i, v in ipairs(values) do parts[i] = util.json_encode(v) end
  local body = '{"@recordsetCount":' .. #values .. ',"value":[' .. table.concat(parts, ",") .. "]}"
  return util.send(200, "application/json; charset=utf-8", body)
end

local function guard()
  local rec = auth.require_token()
  return rec and auth.rate_limit(rec)
end

local function check_country(country)
  if country:match("^%a%a$") then return true end
  util.avatax_error(422, "ValidationException", "The country must be an ISO 3166-1 alpha-2 code.", {
    target = "IncorrectData",
    details = { util.detail("InvalidCountry", "Unknown country code " .. country .. ".", "country") },
  })
  return false
end

local function not_found(code)
  return util.avatax_error(404, "EntityNotFoundError", "HS code " .. code .. " was not found.",
    { target = "HttpRequest" })
end

-- Accepts "6109.10" as well as "610910".
local function normalize(code)
  return (code:gsub("%.", ""))
end

-- GET /api/v2/definitions/crossborder/sections
function M.sections()
  if not guard() then return end
  return recordset(hs.sections())
end

-- GET /api/v2/definitions/crossborder/{country}[/{hsCode}]
function M.children(ctx)
  if not guard() then return end
  local country, code = ctx.captures[1], ctx.captures[2]
  if not check_country(country) then return end
  code = code and normalize(code) or ""
  local list = hs.children(code)
  if not list then return not_found(code) end
  return recordset(list)
end

-- GET /api/v2/definitions/crossborder/{country}/{hsCode}/hierarchy
function M.hierarchy(ctx)
  if not guard() then return end
  local country, code = ctx.captures[1], normalize(ctx.captures[2])
  if not check_country(country) then return end
  local list = hs.hierarchy(code)
  if not list then return not_found(code) end
  return recordset(list)
end

return M
