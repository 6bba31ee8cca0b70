--- HS definitions: sections, the codes under a code, and the chain above
-- one, read as AvaTax `FetchResult`s (docs/api-contracts.md sections 2.1, 4 and 7).
--
--    local records, count = client:hs_codes("US", "84", { top = 100, filter = "description contains 'pump'" })
--    local next_code = client:each_hs_code("US", "XI")
--    while true do
--      local rec, err = next_code()
--      if rec == nil then assert(err == nil, err); break end
--      print(rec.hsCode, rec.description)
--    end
--
-- The client calls delegate here. Every list follows `@nextLink`
-- (`avalara.paging`). Records are the decoded `HsCodeModel`s as sent,
-- unknown fields included; HS codes are strings.
-- (Was `avalara.definitions`, which still loads this.)
-- @module avalara.hs.tariff
local countries = require "avalara.country"
local paths = require "avalara.paths"
local paging = require "avalara.paging"

local M = {}

--- The most records the service returns per page (`$top` at most; `avalara.paging.MAX_TOP`).
M.MAX_TOP = paging.MAX_TOP

-- The checks return a message naming the argument; the public functions
-- raise it at their caller (programming errors, docs/design.md section 6).
local function country_error(country)
  if type(country) ~= "string" or country == "" then
    return "'country' must be a country code or name (got " .. type(country) .. ")"
  end
  -- a two-letter code is checked (UK: did you mean GB?); a name goes as it is
  local why = country:match("^%a%a$") and countries.problem(country)
  if why then return "'country': " .. why end
end

local function code_error(code)
  if type(code) == "number" then
    return "'code' must be a string: HS codes keep their leading zeros (\"0101\", not 101)"
  end
  if type(code) ~= "string" or code:gsub("%.", "") == "" then
    return "'code' must be a section numeral or an HS code string (got " .. type(code) .. ")"
  end
end

--- An HS code as the service writes it: the dots people write for reading
-- (`"6109.10"`, `"6109.10.00"`) left out, as `hscode lookup` does.
-- @string code
-- @treturn string
function M.normal_code(code)
  return (code:gsub("%.", ""))
end

--- Resolves a `@nextLink` against the URL of the page that sent it (`avalara.paging.resolve`).
M.resolve = paging.resolve

--- The 21 HS sections (`hsCode` a Roman numeral, `I` to `XXI`).
-- @param client an `avalara.Client`
-- @return records, count | nil, err
function M.sections(client)
  return paging.collect(client, client.api_base .. paths.build("definitions_sections", {}))
end

-- The children URL, or nil, message.
local function children_url(client, country, code, opts)
  local err = country_error(country) or code_error(code)
  if err then return nil, err end
  code = M.normal_code(code)
  local q
  q, err = paging.query(opts)
  if not q then return nil, err end
  return client.api_base .. paths.build("definitions_children", { country = country, hsCode = code }) .. q
end

--- The next level below a section numeral, chapter, heading or subheading,
-- every page.
-- @param client an `avalara.Client`
-- @string country the destination country (code or name)
-- @string code a section numeral (`"XI"`) or an HS code string (dots allowed: `"6109.10"`)
-- @tparam[opt] table opts `{filter, top, skip, order_by}`: `top` is the page size (1 to 1000)
-- @return records, count (`@recordsetCount`) | nil, err
function M.hs_codes(client, country, code, opts)
  local url, err = children_url(client, country, code, opts)
  if not url then error("client:hs_codes: " .. err, 3) end
  return paging.collect(client, url, opts and opts.skip)
end

--- An iterator over the codes below `code`, fetching pages as it goes:
-- yields each record; after a failure it yields `nil, err` once and ends
-- (`avalara.paging.each`).
-- @param client an `avalara.Client`
-- @string country
-- @string code
-- @tparam[opt] table opts as for `hs_codes`
-- @treturn function
function M.each_hs_code(client, country, code, opts)
  local url, err = children_url(client, country, code, opts)
  if not url then error("client:each_hs_code: " .. err, 3) end
  return paging.each(client, url, opts and opts.skip)
end

--- The chain from the root record (`hsCode` `""`) down to `code`; branch
-- records (`hsCode` `""`, informational) included.
-- @param client an `avalara.Client`
-- @string country
-- @string code an HS code string (dots allowed: `"6109.10"`)
-- @return records, count | nil, err
function M.hierarchy(client, country, code)
  local err = country_error(country) or code_error(code)
  if err then error("client:hierarchy: " .. err, 3) end
  return paging.collect(client, client.api_base
    .. paths.build("definitions_hierarchy", { country = country, hsCode = M.normal_code(code) }))
end

return M
