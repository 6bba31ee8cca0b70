--- HS definitions: sections, the codes under a code, and the chain above
-- one, read as AvaTax `FetchResult`s (avalara-api.md sections 2.1, 4 and 7).
--
--    local records, count = client:hs_codes("US", "84", { top = 100, filter = "description contains 'pump'" })
--    for rec, err in client:each_hs_code("US", "XI") do
--      if not rec then error(err) end
--      print(rec.hsCode, rec.description)
--    end
--
-- The client calls delegate here. Every list follows `@nextLink` (relative
-- or absolute, on the API's own origin only, since the request carries the
-- token) and stops at an empty page, at the `@recordsetCount`, when there is
-- no `@nextLink`, or when a link comes back that was already followed (the
-- service sends one even on its empty last page). Records are the decoded
-- `HsCodeModel`s as sent, unknown fields included; HS codes are strings.
-- @module avalara.definitions
local core = require "avalara.core"
local paths = require "avalara.paths"

local M = {}

--- The most records the service returns per page (`$top` at most).
M.MAX_TOP = 1000

local OPTIONS = { filter = true, top = true, skip = true, order_by = true }

-- The checks return a message naming the argument; the public functions
-- raise it at their caller (programming errors, design.md section 6).
local function country_error(country)
  if type(country) ~= "string" or country == "" then
    return "'country' must be a country code or name (got " .. type(country) .. ")"
  end
end

local function code_error(code)
  if type(code) == "number" then
    return "'code' must be a string: HS codes keep their leading zeros (\"0101\", not 101)"
  end
  if type(code) ~= "string" or code == "" then
    return "'code' must be a section numeral or an HS code string (got " .. type(code) .. ")"
  end
end

local function integer(v)
  return type(v) == "number" and v == math.floor(v)
end

-- "?%24top=5&..." for the list options (keys %24-encoded, as the SDKs send
-- them; $skip=0 left out, as they do), "" when there are none; or nil, message.
local function query(opts)
  if opts == nil then return "" end
  if type(opts) ~= "table" then return nil, "'opts' must be a table" end
  for k in pairs(opts) do
    if not OPTIONS[k] then return nil, "unknown option '" .. tostring(k) .. "' (filter, top, skip, order_by)" end
  end
  local parts, top, skip = {}, opts.top, opts.skip
  if top ~= nil then
    if not integer(top) or top < 1 or top > M.MAX_TOP then
      return nil, "'top' must be an integer from 1 to " .. M.MAX_TOP .. " (got " .. tostring(top) .. ")"
    end
    parts[#parts + 1] = string.format("%%24top=%d", top)
  end
  if skip ~= nil then
    if not integer(skip) or skip < 0 then
      return nil, "'skip' must be a non-negative integer (got " .. tostring(skip) .. ")"
    end
    if skip > 0 then parts[#parts + 1] = string.format("%%24skip=%d", skip) end
  end
  for _, o in ipairs { { "filter", "%24filter" }, { "order_by", "%24orderBy" } } do
    local v = opts[o[1]]
    if v ~= nil then
      if type(v) ~= "string" then return nil, "'" .. o[1] .. "' must be a string (got " .. type(v) .. ")" end
      parts[#parts + 1] = o[2] .. "=" .. paths.encode(v)
    end
  end
  if #parts == 0 then return "" end
  return "?" .. table.concat(parts, "&")
end

-- scheme://host[:port] of an absolute URL, lower-cased, or nil.
local function origin(url)
  local o = url:match("^(%a[%w+.-]*://[^/?#]*)")
  return o and o:lower()
end

--- Resolves a `@nextLink` against the URL of the page that sent it
-- (RFC 3986 reference forms: absolute, `//host/…`, `/path`, `?query`, relative).
-- @string base the page's URL
-- @string link the `@nextLink`
-- @treturn string the absolute URL
function M.resolve(base, link)
  if link:match("^%a[%w+.-]*://") then return link end
  local scheme = base:match("^(%a[%w+.-]*):")
  if link:sub(1, 2) == "//" then return scheme .. ":" .. link end
  local o = base:match("^(%a[%w+.-]*://[^/?#]*)")
  if link:sub(1, 1) == "/" then return o .. link end
  local path = base:match("^[^?#]*")
  if link:sub(1, 1) == "?" then return path .. link end
  return path:gsub("[^/]*$", "") .. link
end

local function parse_error(msg, status)
  return core.error { kind = "parse", status = status, message = msg }
end

-- A pager over the FetchResult at `url` (whose records start at `skip`):
-- each call fetches one page and returns its records (possibly none) and
-- its @recordsetCount, or nil, err; then nil once there is no page to fetch.
local function pager(client, url, skip)
  local api = origin(client.api_base)
  local seen, fetched = {}, 0
  return function()
    if not url then return nil end
    local here = url
    seen[here], url = true, nil
    local status, body = client:call("GET", here)
    if status == nil then return nil, body end
    if type(body) ~= "table" or type(body.value) ~= "table" then
      return nil, parse_error("expected a FetchResult ({\"@recordsetCount\", \"value\"}) from " .. here, status)
    end
    local values, count, link = body.value, tonumber(body["@recordsetCount"]), body["@nextLink"]
    fetched = fetched + #values
    local more = #values > 0 and type(link) == "string" and link ~= ""
      and not (count and (skip or 0) + fetched >= count)
    if more then
      local next_url = M.resolve(here, link)
      if origin(next_url) ~= api then
        return nil, parse_error("@nextLink " .. next_url .. " is not on " .. tostring(api)
          .. ": not followed (the request would carry the token)", status)
      end
      if not seen[next_url] then url = next_url end
    end
    return values, count
  end
end

-- Every record of the FetchResult at `url`, following @nextLink: records,
-- count (@recordsetCount of the first page, else the number of records).
local function collect(client, url, skip)
  local next_page = pager(client, url, skip)
  local records, count, pages = {}, nil, 0
  while true do
    local page, c = next_page()
    if page == nil then
      if c ~= nil then return nil, c end
      break
    end
    pages = pages + 1
    if pages == 1 then count = c end
    for _, r in ipairs(page) do records[#records + 1] = r end
  end
  return records, count or #records
end

--- The 21 HS sections (`hsCode` a Roman numeral, `I` to `XXI`).
-- @param client an `avalara.Client`
-- @return records, count | nil, err
function M.sections(client)
  return collect(client, client.api_base .. paths.build("definitions_sections", {}))
end

-- The children URL, or nil, message.
local function children_url(client, country, code, opts)
  local err = country_error(country) or code_error(code)
  if err then return nil, err end
  local q
  q, err = query(opts)
  if not q then return nil, err end
  return client.api_base .. paths.build("definitions_children", { country = country, hsCode = code }) .. q
end

--- The next level below a section numeral, chapter, heading or subheading,
-- every page.
-- @param client an `avalara.Client`
-- @string country the destination country (code or name)
-- @string code a section numeral (`"XI"`) or an HS code string
-- @tparam[opt] table opts `{filter, top, skip, order_by}`: `top` is the page size (1 to 1000)
-- @return records, count (`@recordsetCount`) | nil, err
function M.hs_codes(client, country, code, opts)
  local url, err = children_url(client, country, code, opts)
  if not url then error("client:hs_codes: " .. err, 3) end
  return collect(client, url, opts and opts.skip)
end

--- An iterator for a generic `for` over the codes below `code`, fetching
-- pages as it goes: yields each record; after a failure it yields
-- `false, err` once and ends.
-- @param client an `avalara.Client`
-- @string country
-- @string code
-- @tparam[opt] table opts as for `hs_codes`
-- @treturn function
function M.each_hs_code(client, country, code, opts)
  local url, err = children_url(client, country, code, opts)
  if not url then error("client:each_hs_code: " .. err, 3) end
  local next_page = pager(client, url, opts and opts.skip)
  local page, i, finished = {}, 0, false
  return function()
    if finished then return nil end
    while i >= #page do
      local perr
      page, perr = next_page()
      i = 0
      if not page then
        finished = true
        if perr then return false, perr end
        return nil
      end
    end
    i = i + 1
    return page[i]
  end
end

--- The chain from the root record (`hsCode` `""`) down to `code`; branch
-- records (`hsCode` `""`, informational) included.
-- @param client an `avalara.Client`
-- @string country
-- @string code an HS code string
-- @return records, count | nil, err
function M.hierarchy(client, country, code)
  local err = country_error(country) or code_error(code)
  if err then error("client:hierarchy: " .. err, 3) end
  return collect(client, client.api_base
    .. paths.build("definitions_hierarchy", { country = country, hsCode = code }))
end

return M
