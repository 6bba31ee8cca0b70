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

-- The body-signature scheme's `signature` {type = "hmac", key, algorithm}
-- (Avalara's E-Invoicing SubscriptionRegistration), checked without ever
-- showing the key.
local function signature(where, sig)
  if type(sig) ~= "table" then args.fail(where, "'signature' must be a table {type = \"hmac\", key, algorithm}", 4) end
  if sig.type ~= nil and sig.type ~= "hmac" then
    args.fail(where, "'signature.type' must be \"hmac\" (an unsigned subscription is refused by avalara.webhook)", 4)
  end
  if type(sig.key) ~= "string" or #sig.key < 16 then
    args.fail(where, "'signature.key' must be a string of at least 16 bytes (the key avalara.webhook checks with)", 4)
  end
  if sig.algorithm ~= "sha256" and sig.algorithm ~= "sha512" then
    args.fail(where, "'signature.algorithm' must be \"sha256\" or \"sha512\" (the ones avalara.webhook checks; got "
      .. tostring(sig.algorithm):sub(1, 40) .. ")", 4)
  end
  return { type = "hmac", key = sig.key, algorithm = sig.algorithm }
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
  if reg.signature ~= nil then
    if partial then args.fail(where, "'signature' cannot be changed: register again", 3) end
    out.signature = signature(where, reg.signature)
  end
  out.typeName = reg.typeName or (not partial and "Webhook" or nil)
  out.events = reg.events or (not partial and "HSCodeAssigned" or nil)
  return out
end

--- Registers a webhook: the service POSTs an `HSCodeAssigned` event to
-- `url` when codes are assigned to an item (see `avalara.webhook`). With
-- `signature` the deliveries follow Avalara's published body-signature
-- scheme under a key of yours (`avalara.webhook` with `scheme = "body"`);
-- without, the header scheme (`scheme = "header"`, `client:webhook_secret`).
-- @param client
-- @tparam table reg `{connectorName, url, typeName = "Webhook", events = "HSCodeAssigned",
-- signature = {type = "hmac", key (16 bytes or more), algorithm = "sha256" | "sha512"}?}`
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
