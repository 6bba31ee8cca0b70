--- AvaTax `FetchResult` lists (docs/api-contracts.md section 4): the query string
-- of the list options, and every page of a list followed through
-- `@nextLink`. The tariff definitions (`avalara.hs.tariff`) and the Items
-- service (`avalara.items`) read their lists here.
--
--    local paging = require "avalara.paging"
--    local q = assert(paging.query({ top = 100, filter = "itemCode eq 'A'" }))  -- "?%24top=100&%24filter=..."
--    local records, count = paging.collect(client, url .. q)
--
-- A list follows `@nextLink` (relative or absolute, on the API's own origin
-- only, since the request carries the token) and stops at an empty page, at
-- the `@recordsetCount`, when there is no `@nextLink`, or when a link comes
-- back that was already followed (the service sends one even on its empty
-- last page). Records are the decoded models as sent, unknown fields included.
-- (Was `avalara.fetch`, which still loads this.)
-- @module avalara.paging
local core = require "avalara.core"
local paths = require "avalara.paths"

local M = {}

-- client:call's opts: the response headers are not read here
local NO_HEADERS = { response_headers = false }

local unpack = table.unpack or unpack -- luacheck: ignore 143

--- The most records the service returns per page (`$top` at most).
M.MAX_TOP = 1000

--- The list options every list takes, and their names on the wire (the
-- SDKs' `%24`-encoded keys).
M.OPTIONS = { filter = "%24filter", top = "%24top", skip = "%24skip", order_by = "%24orderBy" }

local function integer(v)
  return type(v) == "number" and v == math.floor(v)
end

-- A value of `extra`: a string, or a list of strings joined with commas.
local function text(name, v)
  if type(v) == "table" then
    for i, s in ipairs(v) do
      if type(s) ~= "string" then return nil, "'" .. name .. "[" .. i .. "]' must be a string" end
    end
    v = table.concat(v, ",")
  end
  if type(v) ~= "string" then return nil, "'" .. name .. "' must be a string (got " .. type(v) .. ")" end
  return v
end

--- The query string of list options: `"?%24top=5&..."` (keys `%24`-encoded
-- as the SDKs send them; `skip = 0` left out, as they do), `""` when there
-- are none.
-- @tparam[opt] table opts `{filter, top (1 to 1000), skip, order_by}` and the keys of `extra`
-- @tparam[opt] table extra more options the list takes: option name -> name on the wire
-- (a value may be a string or a list of strings, sent joined with commas)
-- @return the query string, or nil and a message naming the bad option
function M.query(opts, extra)
  if opts == nil then return "" end
  if type(opts) ~= "table" then return nil, "'opts' must be a table" end
  extra = extra or {}
  for k in pairs(opts) do
    if not M.OPTIONS[k] and not extra[k] then
      local more = {}
      for name in pairs(extra) do more[#more + 1] = name end
      table.sort(more)
      local names = { "filter", "top", "skip", "order_by", unpack(more) }
      return nil, "unknown option '" .. tostring(k) .. "' (" .. table.concat(names, ", ") .. ")"
    end
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
  local names = { { "filter", M.OPTIONS.filter }, { "order_by", M.OPTIONS.order_by } }
  local sorted = {}
  for name in pairs(extra) do sorted[#sorted + 1] = name end
  table.sort(sorted)
  for _, name in ipairs(sorted) do names[#names + 1] = { name, extra[name] } end
  for _, o in ipairs(names) do
    local v = opts[o[1]]
    if v ~= nil then
      local s, err = text(o[1], v)
      if not s then return nil, err end
      parts[#parts + 1] = o[2] .. "=" .. paths.encode(s)
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

--- A pager over the FetchResult at `url`: each call fetches one page and
-- returns its records (possibly none) and its `@recordsetCount`, or nil,
-- err; then nil once there is no page to fetch.
-- @param client an `avalara.Client` (its `call` and `api_base`)
-- @string url the first page
-- @tparam[opt] number skip the `$skip` of the first page
-- @treturn function
function M.pager(client, url, skip)
  local api = origin(client.api_base)
  local seen, fetched = {}, 0
  return function()
    if not url then return nil end
    local here = url
    seen[here], url = true, nil
    local status, body = client:call("GET", here, nil, NO_HEADERS)
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

--- Every record of the FetchResult at `url`, following `@nextLink`.
-- @param client an `avalara.Client`
-- @string url
-- @tparam[opt] number skip the `$skip` of the first page
-- @return records, count (`@recordsetCount` of the first page, else the number of records) | nil, err
function M.collect(client, url, skip)
  local next_page = M.pager(client, url, skip)
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

-- The iterator `each` returns: a generic `for` calls it; `err` keeps the
-- failure that ended it, which the loop's body never sees (`nil` ends a `for`).
local Iterator = { __call = function(self) return self.step() end }

--- An iterator over the records of the FetchResult at `url`, fetching
-- pages as it goes: each call returns the next record; after a failure it
-- returns `nil, err` once, then nil (the error convention of every `each_*`).
-- A generic `for` ends at that nil without seeing `err`, so the iterator
-- keeps it: `for rec in records do ... end; if records.err then ... end`.
-- @param client an `avalara.Client`
-- @string url
-- @tparam[opt] number skip the `$skip` of the first page
-- @treturn table the iterator (callable; `err` once it stopped on a failure)
function M.each(client, url, skip)
  local next_page = M.pager(client, url, skip)
  local page, i, finished = {}, 0, false
  local it = setmetatable({}, Iterator)
  function it.step()
    if finished then return nil end
    while i >= #page do
      local perr
      page, perr = next_page()
      i = 0
      if not page then
        finished = true
        it.err = perr
        if perr then return nil, perr end
        return nil
      end
    end
    i = i + 1
    return page[i]
  end
  return it
end

return M
