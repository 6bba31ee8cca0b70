--- The Items service: the AvaTax Items API (docs/api-contracts.md sections 2.2 to
-- 2.7) on a client, as `client.items`: items in the company's catalog, HS
-- classification of items for several destination countries at once, its
-- statuses and SLA, verified codes, item and premium classifications,
-- webhook registrations, and the catalog helper.
--
--    local made = assert(client.items:create {
--        { itemCode = "MUG-1", description = "porcelain coffee mug" },
--        { itemCode = "TS/2", description = "men's cotton t-shirt" } })
--    local ids = { made[1].id, made[2].id }
--    assert(client.items:classify(ids, { "US", "DE", "JP" }))
--    assert(client.items:wait(ids, { "US", "DE", "JP" }))
--    for _, k in ipairs(assert(client.items:classifications(ids[1]))) do
--      print(k.country, k.systemCode, k.productCode)   --> US HTS 691110 ...
--    end
--
-- Today's flat names on the client (`client:create_items(...)`,
-- `client:initiate_hscode_classification(...)`, ...) stay, as aliases
-- (`aliases`: flat name -> service method). `client:items(opts)` (the list)
-- works because the service object is callable: `client.items(client, opts)`
-- is its `list`.
--
-- These routes live on AvaTax's REST API (`items_base`: `https://rest.avatax.com`,
-- sandbox `https://sandbox-rest.avatax.com`) and take a token of scope
-- `avatax_api` (`items_scope`): the calls run on a client of the same
-- account for that API and scope (`avalara.items.api`).
--
-- One module per concept, each a set of functions of a client:
-- `avalara.items.items` (create, list, each_item, item, update, delete),
-- `avalara.items.classification` (classify, wait, status, sla, verify, dismiss,
-- delete_status, status_values, classifications, classification),
-- `avalara.items.premium`, `avalara.items.registrations` (events, register,
-- registrations, registration, update_registration, delete_registration),
-- `avalara.items.catalog` (classify_catalog). Item codes in paths are encoded
-- as Avalara publishes (`avalara.paths.item_code`). Runtime failures return
-- `nil, err`; wrong arguments raise at once, naming them.
-- @module avalara.items
local args = require "avalara.items.args"
local model = require "avalara.items.model"
local api = require "avalara.items.api"
local items = require "avalara.items.items"
local classification = require "avalara.items.classification"
local premium = require "avalara.items.premium"
local registrations = require "avalara.items.registrations"
local catalog = require "avalara.items.catalog"

local M = {}

--- The client's field of this service: `client.items`.
M.field = "items"

--- The service's methods: name -> the function of a client implementing it.
M.methods = {
  create = items.create, list = items.list, each_item = items.each_item, item = items.item,
  update = items.update, delete = items.delete,
  classify = classification.classify, wait = classification.wait, status = classification.status,
  sla = classification.sla, verify = classification.verify, dismiss = classification.dismiss,
  delete_status = classification.delete_status, status_values = classification.status_values,
  classifications = classification.classifications, classification = classification.classification,
  premium_classification = premium.premium_classification, premium_classifications = premium.premium_classifications,
  events = registrations.events, register = registrations.register, registrations = registrations.registrations,
  registration = registrations.registration, update_registration = registrations.update_registration,
  delete_registration = registrations.delete_registration, classify_catalog = catalog.classify,
}
local methods = M.methods

--- Today's flat names on the client -> the service's method. `items` (the
-- list) is not here: `client.items` is the service, callable as the list.
M.aliases = {
  create_items = "create", each_item = "each_item", item = "item", update_item = "update",
  delete_item = "delete", initiate_hscode_classification = "classify", wait_hscode_classification = "wait",
  hscode_classification_status = "status", hscode_classification_sla = "sla", verify_hscodes = "verify",
  dismiss_hscode_classification = "dismiss", delete_hscode_classification_status = "delete_status",
  hscode_classification_statuses = "status_values", item_classifications = "classifications",
  item_classification = "classification", premium_classification = "premium_classification",
  premium_classifications = "premium_classifications", item_events = "events",
  create_webhook_registration = "register", webhook_registrations = "registrations",
  webhook_registration = "registration", update_webhook_registration = "update_registration",
  delete_webhook_registration = "delete_registration", classify_catalog = "classify_catalog",
}

--- The service object (`client.items`): the methods of `methods`, called
-- with `:`, on the client it was made for.
-- @type Items
local Items = {}
Items.__index = Items
for name, f in pairs(methods) do
  Items[name] = function(self, ...) return f(self.client, ...) end
end

-- `client:items(opts)`, the flat name of the list: `client.items(client, opts)`
-- (or a wrapper's, such as `avalara.fleet`'s, whose `client` field is this client).
function Items.__call(self, client, ...)
  if client ~= self.client and not (type(client) == "table" and rawget(client, "client") == self.client) then
    error("client:items: call it as client:items(opts) or client.items:list(opts)", 2)
  end
  return items.list(self.client, ...)
end

--- Makes the service of `client`.
-- @param client an `avalara.Client`
-- @treturn Items
function M.new(client)
  if type(client) ~= "table" then error("avalara.items.new: 'client' must be an avalara client", 2) end
  return setmetatable({ client = client }, Items)
end

-- @section end

--- The flat methods, for a client class to mix in (`Client[name] = f`):
-- flat name -> the function of a client (the alias of each service method,
-- and `items`, the list).
M.Client = { items = items.list }
for flat, name in pairs(M.aliases) do M.Client[flat] = methods[name] end

--- The most items (or rows) one create, initiate or verify request may hold.
M.MAX_PER_REQUEST = args.MAX_PER_REQUEST
--- Items per create request by default (`avalara.items.items.CREATE_CHUNK`).
M.CREATE_CHUNK = items.CREATE_CHUNK
--- Items per initiate request by default (`avalara.items.classification.INITIATE_CHUNK`).
M.INITIATE_CHUNK = classification.INITIATE_CHUNK
--- The status values that are not a decision yet (`avalara.items.classification.PENDING`).
M.PENDING = classification.PENDING
--- Longest values of an item (`avalara.items.model.LIMITS`).
M.LIMITS = model.LIMITS
--- Checks an item and builds its create body (`avalara.items.model.body`).
M.body = model.body
--- A list of countries, checked (`avalara.items.args.countries`).
M.countries = args.countries
--- Items by id with their statuses by country (`avalara.items.classification.statuses`).
M.statuses = classification.statuses
--- The client that makes a client's Items API calls (`avalara.items.api.client`).
M.api = api.client

return M
