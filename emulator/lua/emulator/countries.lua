-- Countries (ISO 3166-1, from Debian's iso-codes) and the tariff system the
-- definitions give each of them. Pure Lua + lua-cjson, so it runs inside
-- nginx and under busted alike.
--
--   local countries = require "emulator.countries"
--   countries.load(path)        -- /usr/share/iso-codes/json/iso_3166-1.json
--   countries.find("es")        -- {code="ES", name="Spain", numeric=724} or nil
--   countries.system("ES")      -- {name="Integrated Tariff of the European Union", block=999}
--
-- `block` numbers the system's HS code ids (see emulator.hs): records of one
-- system have ids block * 10000 + n, so every system's ids are apart and
-- the same code always has the same id in the same system.
local cjson = require "cjson.safe"

local M = {}

M.DEFAULT_PATH = "/usr/share/iso-codes/json/iso_3166-1.json"

-- The two system names Avalara's published examples show (docs/api-contracts.md
-- section 7); the European Union's members share one tariff, so one system.
local US = { name = "Harmonized Tariff Schedule A of the United States", block = 840 }
local EU = { name = "Integrated Tariff of the European Union", block = 999 }
local EU_MEMBERS = {}
for c in ("AT BE BG CY CZ DE DK EE ES FI FR GR HR HU IE IT LT LU LV MT NL PL PT RO SE SI SK"):gmatch("%a+") do
  EU_MEMBERS[c] = true
end

local state   -- {by_key = {...}, path = ...}

function M.load(path)
  path = path or M.DEFAULT_PATH
  if state and state.path == path then return true end
  local f, err = io.open(path, "rb")
  if not f then error("emulator.countries: cannot read " .. tostring(err) .. " (Debian package iso-codes)", 0) end
  local doc = cjson.decode(f:read("*a"))
  f:close()
  local list = type(doc) == "table" and doc["3166-1"]
  if type(list) ~= "table" or #list == 0 then error("emulator.countries: no countries in " .. path, 0) end
  local by_key = {}
  for _, c in ipairs(list) do
    local rec = { code = c.alpha_2, name = c.common_name or c.name, numeric = tonumber(c.numeric) }
    for _, key in ipairs { c.alpha_2, c.alpha_3, c.name, c.common_name, c.official_name } do
      if type(key) == "string" then by_key[key:upper()] = rec end
    end
  end
  state = { by_key = by_key, path = path }
  return true
end

local function loaded()
  if not state then error("emulator.countries: call load() first", 3) end
  return state
end

-- A country from its alpha-2 or alpha-3 code or its English name (any
-- case): the route's `{country}` is "the name or code of the destination
-- country". A copy, or nil.
function M.find(name_or_code)
  if type(name_or_code) ~= "string" then return nil end
  local rec = loaded().by_key[name_or_code:upper()]
  return rec and { code = rec.code, name = rec.name, numeric = rec.numeric } or nil
end

-- The tariff system of a country (alpha-2): {name, block}.
function M.system(code)
  if code == "US" then return US end
  if EU_MEMBERS[code] then return EU end
  local rec = loaded().by_key[code]
  if not rec then return nil end
  return { name = "Customs Tariff of " .. rec.name, block = rec.numeric }
end

-- The tax system under which an item classification of a country keeps
-- its HS code (ItemClassificationOutputModel.systemCode and systemId): the
-- two codes the published examples show, HTS (the US tariff) and TARIC (the
-- EU's, shared by its members), and HS for every other country, whose
-- `country` tells them apart.
local SYSTEM_CODES = { HTS = 2, TARIC = 3, HS = 1 }
function M.system_code(code)
  local name = code == "US" and "HTS" or (EU_MEMBERS[code] and "TARIC") or "HS"
  return name, SYSTEM_CODES[name]
end

return M
