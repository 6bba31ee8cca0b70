--- Country codes: the one check every country the library and `hscode`
-- take goes through, before any request (issue 23). A destination country
-- is an ISO 3166-1 alpha-2 code, any case; the known codes come from
-- Debian's `iso-codes` (the list the emulator uses too). A common mistake
-- gets the code meant:
--
--    local country = require "avalara.country"
--    country.check("uk")   --> nil, "unknown country code 'UK' (did you mean GB?)"
--    country.check("de")   --> "DE"
--    country.check("zz", { known = true })   --> nil, "unknown country code 'ZZ' (...)"
--
-- @module avalara.country
local cjson = require "cjson.safe"

local M = {}

--- Codes that are no country but are often written for one, and the code
-- meant (docs/hs.md#country-codes). None of them is assigned in ISO 3166-1:
--
-- - `UK` -> `GB`: the United Kingdom's everyday abbreviation and its internet
--   domain; ISO reserves `UK` exceptionally at the UK's request, its code is `GB`
-- - `EL` -> `GR`: Greece in the European Union's own list (VAT numbers, Eurostat)
-- - `JA` -> `JP`, `KO` -> `KR`, `ZH` -> `CN`, `DA` -> `DK`: the ISO 639
--   language codes of Japanese, Korean, Chinese and Danish, confused with
--   the country's (a locale such as `ja_JP` holds both)
--
-- Three-letter codes (ISO 3166-1 alpha-3: `USA`, `DEU`) get their two-letter
-- code as the suggestion when the `iso-codes` list is installed.
M.ALIASES = { UK = "GB", EL = "GR", JA = "JP", KO = "KR", ZH = "CN", DA = "DK" }

local ISO_CODES = "/usr/share/iso-codes/json/iso_3166-1.json"
-- alpha-2 -> true and alpha-3 -> alpha-2; false when the list is not there
local known, alpha3

local function load()
  if known ~= nil then return known end
  known, alpha3 = false, {}
  local f = io and io.open(ISO_CODES, "rb") -- optional (a sandbox has no io)
  if not f then return known end
  local t = cjson.decode(f:read("*a") or "")
  f:close()
  if type(t) == "table" and type(t["3166-1"]) == "table" then
    known = {}
    for _, c in ipairs(t["3166-1"]) do
      if type(c.alpha_2) == "string" then
        known[c.alpha_2] = true
        if type(c.alpha_3) == "string" then alpha3[c.alpha_3] = c.alpha_2 end
      end
    end
  end
  return known
end

--- Whether a two-letter code is a country (ISO 3166-1 alpha-2, any case).
-- @string code
-- @return true or false; nil when the `iso-codes` list is not installed (nothing to check against)
function M.known(code)
  if type(code) ~= "string" then return false end
  if M.ALIASES[code:upper()] then return false end
  local list = load()
  if not list then return nil end
  return list[code:upper()] == true
end

--- What is wrong with a country code, or nil: not two letters, or a
-- common mistake (with the code meant). With `opts.known`, also a code that
-- is no ISO 3166-1 country: the command checks that much before any
-- request; the library leaves the rest to the service, whose list is the
-- one that counts (a code assigned after Debian's list was made still goes).
-- @param code
-- @tparam[opt] table opts `{known = true}`
-- @treturn ?string the message, such as "unknown country code 'UK' (did you mean GB?)"
function M.problem(code, opts)
  if type(code) ~= "string" then return "bad country code (a string of two letters, such as US)" end
  local up = code:upper()
  if not code:match("^%a%a$") then
    load()
    local meant = code:match("^%a%a%a$") and alpha3[up]
    if meant then return string.format("bad country code '%s' (two letters: did you mean %s?)", code, meant) end
    return string.format("bad country code '%s' (two letters, such as US)", code)
  end
  if M.ALIASES[up] then return string.format("unknown country code '%s' (did you mean %s?)", up, M.ALIASES[up]) end
  if opts and opts.known and M.known(up) == false then
    return string.format("unknown country code '%s' (ISO 3166 alpha-2, such as US)", up)
  end
  return nil
end

--- The code upper-cased when `problem` finds nothing, else nil and its message.
-- @param code
-- @tparam[opt] table opts as for `problem`
-- @return the code, or nil, message
function M.check(code, opts)
  local why = M.problem(code, opts)
  if why then return nil, why end
  return code:upper()
end

return M
