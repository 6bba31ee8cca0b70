--- Webhook registrations of the Items API: the service POSTs an
-- `HSCodeAssigned` event to a registration's `url` when codes are assigned
-- to an item (`avalara.webhook` receives them). Functions of a client
-- (`avalara.items` makes them `client.items:register(...)` and the flat
-- `client:create_webhook_registration(...)`).
-- @module avalara.items.registrations
local args = require "avalara.items.args"
local api = require "avalara.items.api"

local M = {}

--- The events a webhook registration may ask for (`{id, name, description}`; `HSCodeAssigned`).
-- @param client an `avalara.Client`
-- @return the list, or nil, err
function M.events(client)
  return api.call(client, "GET", "item_events", {})
end

local function body(where, reg, partial)
  if type(reg) ~= "table" then args.fail(where, "the registration must be a table", 3) end
  local out = {}
  if not partial or reg.connectorName ~= nil then
    if partial then args.fail(where, "'connectorName' cannot be changed", 3) end
    if type(reg.connectorName) ~= "string" or reg.connectorName == "" then
      args.fail(where, "'connectorName' must be a non-empty string", 3)
    end
    out.connectorName = reg.connectorName
  end
  if not partial or reg.url ~= nil then
    if type(reg.url) ~= "string" or not reg.url:match("^[Hh][Tt][Tt][Pp][Ss]?://") then
      args.fail(where, "'url' must be an http(s) URL", 3)
    end
    out.url = reg.url
  end
  out.typeName = reg.typeName or (not partial and "Webhook" or nil)
  out.events = reg.events or (not partial and "HSCodeAssigned" or nil)
  return out
end

--- Registers a webhook: the service POSTs an `HSCodeAssigned` event to
-- `url` when codes are assigned to an item (see `avalara.webhook`).
-- @param client
-- @tparam table reg `{connectorName, url, typeName = "Webhook", events = "HSCodeAssigned"}`
-- @return the `ItemReverseSyncRegistrationOutputModel` (`registrationId`, ...), or nil, err
function M.register(client, reg)
  local where = "client:create_webhook_registration"
  local b = body(where, reg)
  return api.call(client, "POST", "registrations", { companyId = client:company(where) }, b)
end

--- The webhook registrations of the company.
-- @param client
-- @return records, count, or nil, err
function M.registrations(client)
  local where = "client:webhook_registrations"
  return api.list(client, where, "registrations", { companyId = client:company(where) })
end

--- One webhook registration.
-- @param client
-- @int id its `registrationId`
-- @return the model, or nil, err
function M.registration(client, id)
  local where = "client:webhook_registration"
  args.id(where, "id", id)
  return api.call(client, "GET", "registration", { companyId = client:company(where), registrationId = id })
end

--- Changes a webhook registration: only the fields given (`url`, `typeName`, `events`).
-- @param client
-- @int id
-- @tparam table changes
-- @return the model, or nil, err
function M.update_registration(client, id, changes)
  local where = "client:update_webhook_registration"
  args.id(where, "id", id)
  local b = body(where, changes, true)
  return api.call(client, "PATCH", "registration", { companyId = client:company(where), registrationId = id }, b)
end

--- Deletes a webhook registration.
-- @param client
-- @int id
-- @return true, or nil, err
function M.delete_registration(client, id)
  local where = "client:delete_webhook_registration"
  args.id(where, "id", id)
  return api.done(client, "DELETE", "registration", { companyId = client:company(where), registrationId = id })
end

return M
