--- The HS classification service (`client.hs`): classifying an item,
-- reading and waiting for its classification, and the HS definitions
-- (sections, the codes under a code, the chain above one).
--
--    local model = assert(client.hs:classify{ itemCode = "TS-1", description = "men's cotton t-shirt",
--                                             countryOfDestination = "US" })
--    model = assert(client.hs:wait(model))
--    for rec, err in client.hs:each_hs_code("US", "61") do ... end
--
-- The client's flat names (`client:classify`, `client:wait`, ...) are
-- aliases of these methods (`M.aliases`). Run-time failures return
-- `nil, err` (docs/errors.md); a bad argument raises naming the method.
-- @module avalara.hs
local clock = require "avalara.clock"
local retry = require "avalara.retry"
local errors = require "avalara.error"
local options = require "avalara.options"
local paths = require "avalara.paths"
local item_model = require "avalara.hs.item"
local definitions = require "avalara.hs.tariff"

local M = {}

-- client:call's opts where the response headers are not read
local NO_HEADERS = { response_headers = false }

--- The client field this service is reached as: `client.hs`.
M.field = "hs"

--- The client's flat names of these methods (each `client:<alias>(...)` is `client.hs:<method>(...)`).
M.aliases = { classify = "classify", classification = "classification", wait = "wait", sections = "sections",
  hs_codes = "hs_codes", each_hs_code = "each_hs_code", hierarchy = "hierarchy" }

--- The service object.
-- @type Hs
local Hs = {}
Hs.__index = Hs
M.Hs = Hs

Hs.__tostring = function(self) return "avalara hs service (" .. tostring(self.client) .. ")" end

--- The service of `client` (its `call`, `company`, `sleep`, `api_base`).
-- @param client
-- @treturn Hs
function M.new(client)
  return setmetatable({ client = client }, Hs)
end

--- Creates a classification request (its id is `{companyId}-{itemCode}-{country}`:
-- creating the same item for the same country again replaces the request).
-- The item is checked before any request (see `avalara.item`); it raises
-- naming the field when it is not valid.
-- @tparam table item `{itemCode, description, summary?, itemGroup?, parameters?,
-- classificationParameters?}`; the country from `item.countryOfDestination` or `opts.country`
-- @tparam[opt] table opts `{country, item_group}` (`item_group`: the `itemGroup` of items without
-- one, default `avalara.item.DEFAULT_GROUP`)
-- @return the classification model (status usually `PENDING`), or nil, err
function Hs:classify(item, opts)
  if opts ~= nil and type(opts) ~= "table" then error("client:classify: 'opts' must be a table", 2) end
  opts = opts or {}
  local client = self.client
  local company = client:company("client:classify")
  local body = item_model.body(item, { company_id = company, country = opts.country, item_group = opts.item_group,
    where = "client:classify" })
  local status, model = client:call("POST", paths.build("classification_create", { companyId = company }), body,
    NO_HEADERS)
  if status == nil then return nil, model end
  return model
end

--- Reads a classification.
-- @string id `{companyId}-{itemCode}-{country}` (percent-encoded in the path: item codes may hold `/`)
-- @return the model, or nil, err
function Hs:classification(id)
  if type(id) ~= "string" or id == "" then
    error("client:classification: 'id' must be a string (got " .. type(id) .. ")", 2)
  end
  local client = self.client
  local company = client.company_id or client:company("client:classification") -- (raises without one)
  -- The paths built lately, by id (a client reads the same ids again and
  -- again): no table of placeholders, no encoding on every call. Bounded;
  -- made again when the company or the template changes.
  local tpl, memo = paths.templates.classification_get, self._get_paths
  if not memo or memo.company ~= company or memo.tpl ~= tpl or memo.n >= 512 then
    memo = { company = company, tpl = tpl, n = 0, by_id = {} }
    self._get_paths = memo
  end
  local path = memo.by_id[id]
  if not path then
    path = paths.build("classification_get", { companyId = company, id = id })
    memo.by_id[id], memo.n = path, memo.n + 1
  end
  local s, model = client:call("GET", path, nil, NO_HEADERS)
  if s == nil then return nil, model end
  return model
end

--- Polls a classification until it is no longer `PENDING`.
-- The interval grows by half each time (up to 5 s). Each read goes through
-- `client:classification` (so a wrapper of the client sees every read).
-- `timeout` bounds the whole call: every read, its retries and a stalled
-- request included (`client:within`: each request's own timeout is clipped
-- to the time left).
-- @param id_or_model an id, or a model (returned at once when not PENDING)
-- @tparam[opt] table opts `{timeout = 60, interval = 0.25}`
-- @return the model, or nil, err (kind "timeout" when still PENDING at the deadline, or when
-- the deadline came during a read: then `err.cause` is the read's error)
function Hs:wait(id_or_model, opts)
  opts = options.check_opts("client:wait", opts)
  local model, id = nil, id_or_model
  if type(id_or_model) == "table" then
    model, id = id_or_model, id_or_model.id
    if model.status ~= nil and model.status ~= "PENDING" then return model end
  end
  if type(id) ~= "string" then error("client:wait: an id or a model with an 'id' is required", 2) end
  local client = self.client
  local timeout, interval = opts.timeout or 60, opts.interval or 0.25
  local deadline = clock.now() + timeout
  local reserve = retry.poll_reserve(timeout)
  local function late(err)
    return nil, errors.new { kind = "timeout", retryable = true, cause = err, message = string.format(
      "classification %s: no answer within %g s (%s)", id, timeout, tostring(err and err.message)) }
  end
  return client:within(deadline, function()
    if model then client.sleep(math.min(interval, math.max(0, timeout - reserve))) end
    while true do
      local m, err = client:classification(id)
      if not m then
        if err.kind == "timeout" or clock.now() >= deadline then return late(err) end
        return nil, err
      end
      if m.status ~= "PENDING" then return m end
      local left = deadline - clock.now()
      if left <= reserve then
        return nil, errors.new { kind = "timeout", retryable = true, message = string.format(
          "classification %s still PENDING after %g s", id, timeout) }
      end
      -- The last poll is just before the deadline, with the time its answer
      -- needs (`retry.poll_reserve`): --wait N waits N seconds, no more.
      client.sleep(math.min(interval, left - reserve))
      interval = math.min(interval * 1.5, 5)
    end
  end)
end

--- The 21 HS sections (`hsCode` `I` to `XXI`, `system` `""`), as `HsCodeModel` records.
-- @return records, count (`@recordsetCount`), or nil, err
function Hs:sections()
  return definitions.sections(self.client)
end

--- The next level below a section numeral, chapter, heading or subheading in a
-- country's tariff, every page followed (`@nextLink`); empty below a full code.
-- @string country the destination country
-- @string code a section numeral (`"XI"`) or an HS code string (`"84"`, `"6109"`)
-- @tparam[opt] table opts `{filter, top, skip, order_by}` (`top`: page size, 1 to 1000)
-- @return records, count (`@recordsetCount`), or nil, err
function Hs:hs_codes(country, code, opts)
  return definitions.hs_codes(self.client, country, code, opts)
end

--- An iterator over the codes below `code`, fetching pages lazily:
-- `for rec, err in client.hs:each_hs_code("US", "84") do ... end`; after a
-- failure it yields `nil, err` once (`false, err` until `avalara.paging` says otherwise).
-- @string country
-- @string code
-- @tparam[opt] table opts as for `hs_codes`
-- @treturn function
function Hs:each_hs_code(country, code, opts)
  return definitions.each_hs_code(self.client, country, code, opts)
end

--- The chain from the root record (`hsCode` `""`) down to the code itself.
-- @string country the destination country
-- @string code an HS code string
-- @return records, count, or nil, err
function Hs:hierarchy(country, code)
  return definitions.hierarchy(self.client, country, code)
end

return M
