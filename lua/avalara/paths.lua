--- The one table of API paths (design.md section 4).
--
-- Every path of the HS classification and definitions API the client calls
-- (avalara-api.md sections 2.1 and 2.8). `{name}` placeholders are filled by
-- `paths.build`, each value percent-encoded as one path segment (RFC 3986:
-- a classification id `1001-A/B-US` goes as `1001-A%2FB-US`). Change this
-- table when the real service differs.
-- @module avalara.paths
local M = {}

--- Path templates by route name; `{name}` placeholders are filled by `paths.build`.
M.templates = {
  classification_create = "/api/v2/companies/{companyId}/classifications/hs",
  classification_get = "/api/v2/companies/{companyId}/classifications/hs/{id}",
  classification_put = "/api/v2/companies/{companyId}/classifications/hs/{id}",
  definitions_sections = "/api/v2/definitions/crossborder/sections",
  definitions_children = "/api/v2/definitions/crossborder/{country}/{hsCode}",
  definitions_hierarchy = "/api/v2/definitions/crossborder/{country}/{hsCode}/hierarchy",
}

--- Percent-encodes everything but RFC 3986's unreserved characters (as
-- JavaScript's `encodeURIComponent`, which the AvaTax SDKs use): one path
-- segment or query value.
-- @string v
-- @treturn string
function M.encode(v)
  return (tostring(v):gsub("[^%w%-%._~]", function(c) return string.format("%%%02X", c:byte()) end))
end
local encode = M.encode

--- Builds the path named `name` with the placeholder values of `vars`.
-- Raises when the name is unknown or a placeholder has no value.
-- @string name a key of `paths.templates`
-- @tparam table vars placeholder values
-- @treturn string the path
function M.build(name, vars)
  local tpl = M.templates[name]
  if not tpl then error("avalara.paths: unknown path '" .. tostring(name) .. "'", 2) end
  return (tpl:gsub("{(%w+)}", function(k)
    local v = vars and vars[k]
    if v == nil then error("avalara.paths: '" .. name .. "' needs '" .. k .. "'", 3) end
    return encode(v)
  end))
end

return M
