-- The one content handler: names the route, counts it, applies the added
-- latency and any armed fault, then calls the route's handler. Route names
-- are the stable identifiers of counters and faults (see README.md).
local util = require "emulator.util"
local conf = require "emulator.conf"
local counters = require "emulator.counters"
local faults = require "emulator.faults"
local control = require "emulator.control"
local identity = require "emulator.identity"
local oauth2012 = require "emulator.oauth2012"
local classification = require "emulator.classification"
local definitions = require "emulator.definitions"

local M = {}

local CB = "^/api/v2/definitions/crossborder/"
local HS = "^/api/v2/companies/([0-9]+)/classifications/hs"

-- pattern, route name, method -> handler; `args` = how token routes read
-- their parameters (also counted by grant type).
local routes = {
  { "^/connect/token$", "connect_token", { POST = identity.token, GET = identity.token }, args = "form" },
  { "^/connect/authorize$", "connect_authorize", { GET = identity.authorize } },
  { "^/connect/revocation$", "connect_revocation", { POST = identity.revocation }, args = "form" },
  { "^/.well-known/openid-configuration$", "openid_configuration", { GET = identity.discovery } },
  { "^/oauth/authorize$", "oauth_authorize", { GET = oauth2012.authorize } },
  { "^/oauth/access_token$", "oauth_access_token", { POST = oauth2012.access_token }, args = "form" },
  { "^/oauth/generate_token$", "oauth_generate_token",
    { GET = oauth2012.generate_token, POST = oauth2012.generate_token }, args = "params" },
  { "^/oauth/revoke$", "oauth_revoke", { POST = oauth2012.revoke }, args = "form" },
  { HS .. "$", "classification_create", { POST = classification.create } },
  { HS .. "/([^/]+)$", "classification_get", { GET = classification.get, PUT = classification.put } },
  { CB .. "sections$", "definitions_sections", { GET = definitions.sections } },
  { CB .. "([^/]+)$", "definitions_children", { GET = definitions.children } },
  { CB .. "([^/]+)/([^/]+)$", "definitions_children", { GET = definitions.children } },
  { CB .. "([^/]+)/([^/]+)/hierarchy$", "definitions_hierarchy", { GET = definitions.hierarchy } },
}

local grant_routes = { connect_token = true, oauth_access_token = true }

local function match(uri)
  for _, r in ipairs(routes) do
    local m = ngx.re.match(uri, r[1], "jo")
    if m then return r, m end
  end
end

function M.handle()
  ngx.header["x-correlation-id"] = util.uuid()
  local uri = ngx.var.uri
  if uri:sub(1, 11) == "/_emulator/" then return control.handle() end

  local route, captures = match(uri)
  local name = route and route[2] or "unknown"
  local method = ngx.req.get_method()
  -- PUT on a classification is its own route for counters and faults.
  if name == "classification_get" and method == "PUT" then name = "classification_put" end
  counters.request(name)

  local ctx = { route = name, captures = captures or {} }
  if route and route.args then
    ctx.args = route.args == "params" and util.params() or util.form_args()
    if grant_routes[name] then
      counters.grant(name, ctx.args.grant_type or "none")
    elseif name == "oauth_generate_token" then
      counters.grant(name, "generate_token")
    end
  end

  local latency = conf.get().latency_ms
  if latency and latency > 0 then ngx.sleep(latency / 1000) end

  if not route then
    return util.avatax_error(404, "RouteNotFound", "No route matches " .. method .. " " .. uri .. ".",
      { target = "HttpRequest" })
  end
  local handler = route[3][method]
  if not handler then
    local allow = {}
    for m in pairs(route[3]) do allow[#allow + 1] = m end
    table.sort(allow)
    return util.avatax_error(405, "MethodNotAllowed", method .. " is not allowed on " .. uri .. ".",
      { target = "HttpRequest", headers = { Allow = table.concat(allow, ", ") } })
  end

  local fault = faults.take(name)
  if fault and not faults.apply(fault, ctx) then return end
  return handler(ctx)
end

return M
