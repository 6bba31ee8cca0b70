-- AvaTax FetchResult pages (docs/api-contracts.md section 4):
-- {"@recordsetCount":N,"value":[…][,"@nextLink":"…"]}, and the relative
-- @nextLink of a paged list, in the published form (%24-encoded keys,
-- "/api/v2/definitions/crossborder/es/611710000?%24skip=0").
local util = require "emulator.util"

local M = {}

-- Sends a page: `values` (records), `count` (matched before paging), the
-- optional link. Built by hand around the records so the keys keep the
-- published order and an empty page is "value":[].
function M.send(values, count, next_link)
  local parts = {}
  for i, v in ipairs(values) do parts[i] = util.json_encode(v) end
  local body = '{"@recordsetCount":' .. count .. ',"value":[' .. table.concat(parts, ",") .. "]"
  if next_link then body = body .. ',"@nextLink":' .. util.json_encode(next_link) end
  return util.send(200, "application/json; charset=utf-8", body .. "}")
end

-- The link to the page after `q` (emulator.query): sent on every page, the
-- empty last one included; its $skip is this page's $skip plus the records
-- on it, so past the end it points at itself. `extra` = {{name, value}…}
-- are the route's other parameters, carried on (names as they go on the
-- wire, values percent-encoded here; nil values left out).
function M.next_link(path, q, returned, extra)
  local parts = { "%24skip=" .. (q.skip + returned) }
  if q.given.top then parts[#parts + 1] = "%24top=" .. q.given.top end
  if q.given.filter then parts[#parts + 1] = "%24filter=" .. util.percent_encode(q.given.filter) end
  if q.given.orderBy then parts[#parts + 1] = "%24orderBy=" .. util.percent_encode(q.given.orderBy) end
  for _, p in ipairs(extra or {}) do
    if p[2] ~= nil then parts[#parts + 1] = p[1] .. "=" .. util.percent_encode(p[2]) end
  end
  return path .. "?" .. table.concat(parts, "&")
end

return M
