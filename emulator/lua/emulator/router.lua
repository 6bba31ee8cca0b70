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
local items = require "emulator.items"
local hsflow = require "emulator.hsflow"
local webhooks = require "emulator.webhooks"
local errors = require "emulator.errors"
local device = require "emulator.device"

local M = {}

local CB = "^/api/v2/definitions/crossborder/"
local HS = "^/api/v2/companies/([0-9]+)/classifications/hs"
local ITEMS = "^/api/v2/companies/([0-9]+)/items"
local REGISTRATIONS = "^/api/v2/connector-sync/companies/([0-9]+)/registrations"
-- A literal "$" of a path (`$get-sla`), as sent or as %24.
local D = [[(?:\$|%24)]]

-- pattern, route name, method -> handler; `names` = the route name of a
-- method, where it is not the first; `args` = how token routes read their
-- parameters (also counted by grant type). The first pattern that matches
-- wins: the literal segments under /items/ come before {id} and {itemCode}
-- (docs/api-contracts.md section 9), and an {itemId} is digits.
local routes = {
  { "^/connect/token$", "connect_token", { POST = identity.token, GET = identity.token }, args = "form" },
  { "^/connect/authorize$", "connect_authorize", { GET = identity.authorize } },
  { "^/connect/revocation$", "connect_revocation", { POST = identity.revocation, GET = identity.revocation },
    args = "form" },
  { "^/connect/deviceauthorization$", "connect_deviceauthorization", { POST = device.authorization }, args = "form" },
  { "^/device$", "device_verification", { GET = device.page, POST = device.verify }, args = "form" },
  { "^/.well-known/openid-configuration$", "openid_configuration", { GET = identity.discovery } },
  { "^/.well-known/openid-configuration/jwks$", "openid_jwks", { GET = identity.jwks } },
  { "^/oauth/authorize$", "oauth_authorize", { GET = oauth2012.authorize } },
  { "^/oauth/access_token$", "oauth_access_token", { POST = oauth2012.access_token }, args = "form" },
  { "^/oauth/generate_token$", "oauth_generate_token",
    { GET = oauth2012.generate_token, POST = oauth2012.generate_token }, args = "params" },
  { "^/oauth/revoke$", "oauth_revoke", { POST = oauth2012.revoke }, args = "form" },
  { HS .. "$", "classification_create", { POST = classification.create } },
  { HS .. "/([^/]+)$", "classification_get", { GET = classification.get, PUT = classification.put },
    names = { PUT = "classification_put" } },
  { ITEMS .. "/" .. D .. "initiate-hscode-classification$", "items_initiate", { POST = hsflow.initiate } },
  { ITEMS .. "/hscode-classification/" .. D .. "get-sla$", "items_sla", { GET = hsflow.sla } },
  { ITEMS .. "/hscodes/" .. D .. "verify$", "items_verify", { POST = hsflow.verify } },
  -- published literals the emulator does not serve: never an {id} or {itemCode}
  { ITEMS .. "/(?:sync|upload|nlq/" .. D .. "parse|bytags/[^/]+|internal/bySystemCode/[^/]+)$", "items_other", {} },
  { ITEMS .. "$", "items_create", { POST = items.create, GET = items.list }, names = { GET = "items_list" } },
  { ITEMS .. "/([0-9]+)$", "items_get", { GET = items.get, PUT = items.update, DELETE = items.delete },
    names = { PUT = "items_update", DELETE = "items_delete" } },
  { ITEMS .. "/([0-9]+)/classifications$", "items_classifications", { GET = items.classifications } },
  { ITEMS .. "/([0-9]+)/classifications/([0-9]+)$", "items_classification", { GET = items.classification } },
  { ITEMS .. "/([0-9]+)/hscode-classifications-status/" .. D .. "dismiss$", "items_status_dismiss",
    { PUT = hsflow.dismiss } },
  { ITEMS .. "/([0-9]+)/hscode-classifications-status/([^/]+)$", "items_status_delete",
    { DELETE = hsflow.delete_status } },
  { ITEMS .. "/([^/]+)/premiumClassification/([^/]+)$", "items_premium", { GET = items.premium } },
  { ITEMS .. "/([^/]+)/premiumClassifications$", "items_premiums", { GET = items.premiums } },
  { REGISTRATIONS .. "$", "registrations_create", { POST = webhooks.create, GET = webhooks.list },
    names = { GET = "registrations_list" } },
  { REGISTRATIONS .. "/([0-9]+)$", "registrations_get",
    { GET = webhooks.get, PATCH = webhooks.update, DELETE = webhooks.delete },
    names = { PATCH = "registrations_update", DELETE = "registrations_delete" } },
  { "^/api/v2/definitions/items/hscode-classification-status$", "definitions_items_status",
    { GET = hsflow.definitions } },
  { "^/api/v2/definitions/items/events$", "definitions_items_events", { GET = webhooks.events } },
  { CB .. "sections$", "definitions_sections", { GET = definitions.sections } },
  { CB .. "([^/]+)/([^/]+)$", "definitions_children", { GET = definitions.children } },
  { CB .. "([^/]+)/([^/]+)/hierarchy$", "definitions_hierarchy", { GET = definitions.hierarchy } },
}

local grant_routes = { connect_token = true, oauth_access_token = true }

-- Routes match the path as sent (ngx.var.request_uri), not nginx's decoded
-- $uri: a path segment may hold an encoded "/" (an item code in a
-- classification id). Captures are percent-decoded afterwards (the raw
-- ones are kept too, for links back to the same path).
local function match(path)
  for _, r in ipairs(routes) do
    local m = ngx.re.match(path, r[1], "jo")
    if m then
      local captures, raw = {}, {}
      for i = 1, #m do captures[i], raw[i] = util.percent_decode(m[i]), m[i] end
      return r, captures, raw
    end
  end
end

function M.handle()
  ngx.header["x-correlation-id"] = util.uuid()
  local uri = ngx.var.uri
  if uri:sub(1, 11) == "/_emulator/" then return control.handle() end

  local path = ngx.var.request_uri:match("^[^?#]*")
  local route, captures, raw = match(path)
  local method = ngx.req.get_method()
  local name = route and (route.names and route.names[method] or route[2]) or "unknown"
  counters.request(name)

  local ctx = { route = name, captures = captures or {}, raw_captures = raw or {}, path = path }
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

  -- The gateway routes on method and path: an unknown path, or a method the
  -- path does not serve, is its NotFound (the sources publish no 405).
  local handler = route and route[3][method]
  if not handler then
    return errors.send(404, "NotFound", { args = { method, path }, target = "HttpRequest" })
  end

  local fault = faults.take(name)
  if fault and not faults.apply(fault, ctx) then return end
  return handler(ctx)
end

return M
