-- The published models (docs/api-contracts.md sections 3, 4, 5 and 8) and a shape
-- check of a payload against a published example: the same JSON types
-- field for field, every field of the example present, no field outside
-- the published model.
local cjson = require "cjson"

local C = {}

C.FIXTURES = "spec/conformance/fixtures/"

-- model -> its published fields, and the model of the fields that nest one
-- ("X[]" for an array of X).
C.MODELS = {
  FetchResult = { fields = { "@recordsetCount", "value", "@nextLink", "pageKey" },
    nested = { value = "HsCodeModel[]" } },
  HsCodeModel = { fields = { "hsCode", "id", "parentHsCodeId", "description", "system", "destinationCountry",
    "effDate", "endDate" } },
  ErrorResult = { fields = { "error" }, nested = { error = "ErrorInfo" } },
  ErrorInfo = { fields = { "code", "message", "target", "details" }, nested = { details = "ErrorDetail[]" } },
  ErrorDetail = { fields = { "code", "number", "message", "description", "faultCode", "faultSubCode", "helpLink",
    "refersTo", "severity" } },
  HSClassificationModel = { fields = { "id", "hsCode", "status", "resolution", "countryOfDestination", "item" },
    nested = { item = "ItemModel" } },
  ItemModel = { fields = { "id", "companyId", "itemCode", "description", "summary", "itemGroup", "createdDate",
    "classificationParameters", "parameters" },
    nested = { classificationParameters = "ItemParameterModel[]", parameters = "ItemParameterModel[]" } },
  ItemParameterModel = { fields = { "name", "value", "unit" } },

  -- the AvaTax Items flow (sections 2.2 to 2.7, 3.2 to 3.12)
  AvaTaxItemModel = { fields = { "id", "companyId", "itemCode", "taxCodeId", "taxCode", "description", "itemGroup",
    "category", "createdDate", "createdUserId", "modifiedDate", "modifiedUserId", "source", "sourceEntityId",
    "itemType", "upc", "summary", "classifications", "parameters", "customParameters", "tags", "properties",
    "itemStatus", "taxCodeRecommendationStatus", "taxCodeRecommendations", "taxCodeDetails", "image",
    "hsCodeClassificationStatus" },
    nested = { classifications = "ClassificationModel[]", parameters = "AvaTaxItemParameterModel[]",
      hsCodeClassificationStatus = "ItemHSCodeClassificationStatusModel[]" } },
  AvaTaxItemParameterModel = { fields = { "name", "value", "unit", "id", "itemId", "isNeededForCalculation",
    "isNeededForReturns", "isNeededForClassification" } },
  ClassificationModel = { fields = { "id", "productCode", "systemCode", "country", "isPremium" } },
  ItemHSCodeClassificationStatusModel = { fields = { "id", "companyId", "itemId", "country", "status", "details",
    "createdAt", "modifiedAt", "completedAt", "createdUserId", "modifiedUserId" } },
  ItemClassificationOutputModel = { fields = { "id", "itemId", "systemId", "productCode", "systemCode", "country",
    "isPremium", "classificationEvent" } },
  ItemClassificationFetchResult = { fields = { "@recordsetCount", "value", "@nextLink", "pageKey" },
    nested = { value = "ItemClassificationOutputModel[]" } },
  ItemFetchResult = { fields = { "@recordsetCount", "value", "@nextLink", "pageKey" },
    nested = { value = "AvaTaxItemModel[]" } },
  ItemHSCodeClassificationOutputModel = { fields = { "total", "failed" },
    nested = { failed = "FailedHSCodeClassificationModel[]" } },
  FailedHSCodeClassificationModel = { fields = { "itemId", "errors" }, nested = { errors = "HSCodeClassificationError[]" } },
  HSCodeClassificationError = { fields = { "code", "message", "target", "faultCode" } },
  ItemHSCodeClassificationSlaOutputModel = { fields = { "slaInHours" } },
  ItemHSCodeVerificationOutputModel = { fields = { "total", "failed" },
    nested = { failed = "ItemHSCodeVerificationFailedRowModel[]" } },
  ItemHSCodeVerificationFailedRowModel = { fields = { "rowIndex", "itemId", "errors", "errorCode" } },
  ItemPremiumClassificationOutputModel = { fields = { "id", "itemCode", "companyId", "hsCode", "systemCode",
    "justification", "createdDate", "createdUserId", "country" } },
  PremiumClassificationFetchResult = { fields = { "@recordsetCount", "value", "@nextLink", "pageKey" },
    nested = { value = "ItemPremiumClassificationOutputModel[]" } },
  ItemReverseSyncRegistrationOutputModel = { fields = { "registrationId", "connectorName", "url", "companyId",
    "typeName", "events", "isActive", "createdDate", "modifiedDate", "createdUserId", "modifiedUserId" } },
  RegistrationFetchResult = { fields = { "@recordsetCount", "value", "@nextLink", "pageKey" },
    nested = { value = "ItemReverseSyncRegistrationOutputModel[]" } },
  ItemHSCodeClassificationStatusOutputModel = { fields = { "name", "description" } },
  ItemReverseSyncEventDefinitionOutputModel = { fields = { "id", "name", "description" } },
  -- Identity (section 10): IdentityServer's discovery document (the keys PY's
  -- AvalaraOidcModel reads) and its token endpoint's error (DUENDE TokenErrorResult)
  OpenIdConfiguration = { fields = { "issuer", "jwks_uri", "authorization_endpoint", "token_endpoint",
    "userinfo_endpoint", "end_session_endpoint", "check_session_iframe", "revocation_endpoint",
    "introspection_endpoint", "device_authorization_endpoint", "frontchannel_logout_supported",
    "frontchannel_logout_session_supported", "backchannel_logout_supported", "backchannel_logout_session_supported",
    "scopes_supported", "claims_supported", "grant_types_supported", "response_types_supported",
    "response_modes_supported", "token_endpoint_auth_methods_supported", "id_token_signing_alg_values_supported",
    "subject_types_supported", "code_challenge_methods_supported", "request_parameter_supported" } },
  TokenErrorResponse = { fields = { "error", "error_description", "error_uri" } },
  -- ObjectDeletedErrorModel has exactly ErrorDetail's fields (section 3.12)
  ObjectDeletedErrorModel = { fields = { "code", "number", "message", "description", "faultCode", "faultSubCode",
    "helpLink", "refersTo", "severity" } },
}

for _, m in pairs(C.MODELS) do
  m.set = {}
  for _, f in ipairs(m.fields) do m.set[f] = true end
end

-- The JSON type of a decoded value ("integer" apart from other numbers).
local function json_type(v)
  if v == cjson.null then return "null" end
  local t = type(v)
  if t == "number" then return v == math.floor(v) and "integer" or "number" end
  if t == "table" then
    if next(v) == nil then return "empty" end  -- [] or {}: decoded alike
    return v[1] ~= nil and "array" or "object"
  end
  return t
end

local function compatible(a, b)
  if a == b then return true end
  -- an empty array or object matches either
  return (a == "empty" and (b == "array" or b == "object")) or (b == "empty" and (a == "array" or a == "object"))
end

local function check(actual, example, model, path, problems)
  local is_array = model and model:sub(-2) == "[]"
  local name = is_array and model:sub(1, -3) or model
  local ta, te = json_type(actual), json_type(example)
  if not compatible(ta, te) then
    problems[#problems + 1] = ("%s: %s, the published example has %s"):format(path, ta, te)
    return
  end
  if ta == "array" then
    for i, v in ipairs(actual) do
      if example[1] ~= nil then
        check(v, example[1], name, path .. "[" .. i .. "]", problems)
      elseif json_type(v) == "object" then
        check(v, v, name, path .. "[" .. i .. "]", problems)   -- no example element: the model only
      end
    end
  elseif ta == "object" then
    local m = C.MODELS[name]
    for k in pairs(example) do
      if actual[k] == nil then problems[#problems + 1] = path .. "." .. k .. ": missing" end
    end
    for k, v in pairs(actual) do
      if m and not m.set[k] then
        problems[#problems + 1] = path .. "." .. k .. ": not a field of the published " .. name
      elseif example[k] ~= nil then
        check(v, example[k], m and m.nested and m.nested[k], path .. "." .. k, problems)
      end
    end
  end
end

--- The differences of `actual` from the shape of the published `example`
-- of `model`: a list of messages, empty when it conforms.
function C.conform(actual, example, model)
  local problems = {}
  check(actual, example, model, model, problems)
  table.sort(problems)
  return problems
end

--- A fixture: its exact bytes and its decoded value.
function C.fixture(name)
  local f = assert(io.open(C.FIXTURES .. name, "rb"))
  local text = f:read("*a")
  f:close()
  return text, cjson.decode(text)
end

-- A tiny nginx serving fixtures by path (see C.fixture_server).
local FIXTURE_CONF = [[
load_module {{MODULES}}/ndk_http_module.so;
load_module {{MODULES}}/ngx_http_lua_module.so;
worker_processes 1;
daemon off;
error_log {{TMP}}/error.log notice;
events { worker_connections 64; }
http {
    access_log off;
    {{TEMP_PATHS}}
    init_by_lua_block {
        routes = {}
        for path, file, status in ([=[{{ROUTES}}]=]):gmatch("(%S+) (%S+) (%d+)\n") do
            local f = assert(io.open("{{ROOT}}/{{FIXTURES}}" .. file, "rb"))
            routes[path] = { status = tonumber(status), body = f:read("*a") }
            f:close()
        end
    }
    server {
        listen 127.0.0.1:{{PORT}};
        location = /connect/token {
            default_type application/json;
            return 200 '{"access_token":"fixture-token","token_type":"Bearer","expires_in":3600}';
        }
        location / {
            content_by_lua_block {
                local r = routes[ngx.var.uri]
                if not r then ngx.status = 599; return ngx.say("no fixture for ", ngx.var.request_uri) end
                ngx.status = r.status
                ngx.header["Content-Type"] = "application/json; charset=utf-8"
                ngx.print(r.body)
            }
        }
    }
}
]]

--- Starts a tiny nginx fixture server: `routes` = {path -> {status, fixture file}}
-- (matched on the decoded path, any method); the token endpoint answers any
-- grant. Returns the server (`url`, `stop`).
function C.fixture_server(routes)
  local lines = {}
  for path, r in pairs(routes) do lines[#lines + 1] = path .. " " .. r[2] .. " " .. r[1] .. "\n" end
  return require("spec.support.nginx").start(FIXTURE_CONF, { ROUTES = table.concat(lines), FIXTURES = C.FIXTURES })
end

--- Resets the emulator `e` for the published examples: company 3402 (theirs)
-- for the demo account, classifications decided at once.
function C.reset(e)
  e:reset()
  local accounts = e:request("GET", "/_emulator/config").json.accounts
  accounts["2000000001"].companies = { 1001, 3402 }
  e:configure { accounts = accounts, classification_delay = 0 }
end

--- A deep copy without the keys given (a variant of an example).
function C.without(t, ...)
  local drop = {}
  for _, k in ipairs { ... } do drop[k] = true end
  local out = {}
  for k, v in pairs(t) do
    if not drop[k] then out[k] = type(v) == "table" and C.without(v) or v end
  end
  return out
end

return C
