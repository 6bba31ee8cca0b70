-- AvaTax errors as the API sends them: {"error":{"code","message","target",
-- "details":[ErrorDetail]}}, with AvaTax's ErrorCodeId numbers and the
-- message and description texts of Avalara's error pages (docs/api-contracts.md
-- section 5). `-0-`, `-1-`, ... in a text are filled from the arguments.
local util = require "emulator.util"

local M = {}

-- code -> {number, message, description, severity}. Texts quoted from
-- Avalara's error pages where one exists; the others (no page published)
-- are the emulator's own, in the same style.
local CATALOG = {
  InternalServerError = { 209, "Internal server error.", "An unexpected error occurred while processing the request." },
  -- As SW19's filled example: "XXXXXXX not found." / "The Classification Request with id 'XXXXXXX' was not found."
  EntityNotFoundError = { 4, "-1- not found.", "The -0- with -2- '-1-' was not found." },
  ValueRequiredError = { 5, "Field -0- is required.", "Please provide a value for field -0-." },
  StringLengthError = { 13, "Field '-0-' has an invalid length.",
    "Field '-0-' must be between -1- and -2- characters in length." },
  MaxStringLengthError = { 14, "Field '-0-' has an invalid length.",
    "Field '-0-' must be no more than -1- characters in length." },
  InvalidQueryField = { 17, "An invalid field was provided in the query.",
    "The field named '-0-' could not be found." },
  InvalidQueryValue = { 18, "An invalid query value was provided.",
    "The field named '-0-' is type -1- and cannot be compared to '-2-'" },
  AuthorizationException = { 31, "Authorization failed.",
    "This service or operation is not authorized for this account or user.", "Exception" },
  ValidationException = { 32, "Validation Error.", "-0-", "Exception" },
  AuthenticationIncomplete = { 34, "Authentication Incomplete.",
    "You must provide an Authorization header of the type Basic or Bearer to authenticate correctly.", "Exception" },
  -- Identity failures behind the API (ERRDOC IdentityServerError.md, AvalaraIdentityApiError.md;
  -- the descriptions are the emulator's): faultCode Server whatever the status.
  IdentityServerError = { 36, "The Avalara Identity Server failed to authenticate your request.",
    "Avalara Identity could not be reached or did not answer while authenticating the request: -0-",
    "Exception", "Server" },
  AvalaraIdentityApiError = { 608, "An error occurred in the Avalara Identity API.",
    "The server is not configured correctly for Avalara Identity: -0-", "Exception", "Server" },
  BearerTokenInvalid = { 37, "The Bearer token you provided was not recognized by Avalara Identity.",
    "The Bearer token is -0-.", "Exception" },
  JsonFormatError = { 47, "The request body did not contain valid JSON.", "At line -1- position -2-: -0-" },
  InvalidCountry = { 125, "The country '-0-' is not a recognized country code.",
    "Please use the `ListCountries` API to identify a list of ISO 3166 countries and codes." },
  InvalidEnumValue = { 164, "The field '-0-' has an incorrect value.",
    "The value '-1-' for the field '-0-' is invalid.  Acceptable values are: -2-." },
  MalformedFilterException = { 182, "Filter is malformed.", "The filter is invalid: -0-" },
  QueryParameterOutOfRange = { 199, "The value -1- for the query parameter '-0-' is out of range.",
    "The value of the query parameter '-0-' must be a value ranging from -2- to -3-." },
  FieldNotQueryableError = { 1408, "The field '-0-' in the query '-1-' is not queryable.",
    "The field '-0-' in the query '-1-' is not queryable." },
  FieldNotOrderableError = { 1411, "The field '-0-' in the query '-1-' is not orderable.",
    "The field '-0-' in the query '-1-' is not orderable." },
  RequestLimitExceeded = { 1715, "The sandbox classification quota is used up.",
    "The sandbox classification quota of -0- requests is used up." },
  NotFound = { 4001, "Not found.", "No route matches -0- -1-." },
  Unexpected = { 4002, "Unexpected gateway error.", "-0-" },
  RateLimitExceeded = { 4011, "Rate limit exceeded.", "-0-" },
  ServiceTimeout = { 4015, "The service is unavailable.", "-0-" },
  UnsupportedMediaType = { 4016, "Unsupported media type.", "The request's Content-Type must be application/json." },
  IncorrectValueForField = { 4033, "The field '-0-' has an incorrect value.", "-1-" },
  -- The Items flow (docs/api-contracts.md sections 2.2 to 2.7).
  EntityLimitExceeded = { 10, "You have exceeded the number of -0- allowed in one request.",
    "A request may hold at most -1- -0-." },
  ModelRequiredException = { 38, "A model is required.", "The request body must be -0-." },
  DuplicateEntry = { 193, "The object is a duplicate of an existing object.",
    "The -0- '-1-' already exists." },
  NoItemsForClassification = { 1736, "No items for classification.",
    "The request must name at least one item to classify." },
  InvalidHsCode = { 2807, "The HS code '-0-' is not valid.", "An HS code is 6 to 13 digits." },
  DuplicateSystemAndCountryForItem = { 3008, "Multiple entries for system code and country code exist.",
    "The item -0- is given more than once for the country -1-." },
  InvalidHsCodeClassificationStatusOverride = { 3009, "The HS code classification status cannot be changed.",
    "The status -0- of the item -1- for -2- cannot be dismissed." },
  InvalidStatusForHSVerification = { 4028, "The HS code cannot be verified in this status.",
    "The item -0- is being classified for -1-." },
  CannotVerifyHSCode = { 4029, "The HS code '-0-' cannot be verified.",
    "The HS code '-0-' is not in the tariff of -1-." },
  RequestAlreadyInProgress = { 4030, "A request is already in progress.",
    "The item -0- is already being classified for -1-." },
  ObjectDeleted = { 2660, "The entity was marked as deleted.", "The object was deleted.", "Success" },
}
M.CATALOG = CATALOG

local function fill(text, args)
  return (text:gsub("%-(%d)%-", function(i)
    local v = args[tonumber(i) + 1]
    return v == nil and "" or tostring(v)
  end))
end

--- The number of an error code (0 for a code the catalog does not know).
function M.number(code)
  local c = CATALOG[code]
  return c and c[1] or 0
end

--- One ErrorDetail. `args` fill the `-N-` placeholders; `refers_to` names
-- the offending field (validation errors).
function M.detail(code, args, refers_to)
  local c = CATALOG[code] or { 0, code, code }
  args = args or {}
  return {
    code = code,
    number = c[1],
    message = fill(c[2], args),
    description = fill(c[3], args),
    faultCode = c[5] or "Client",
    helpLink = "http://developer.avalara.com/avatax/errors/" .. code,
    refersTo = refers_to,
    severity = c[4] or "Error",
  }
end

--- The ObjectDeletedErrorModel of a deletion (docs/api-contracts.md section 3.12).
function M.deleted()
  local d = M.detail("ObjectDeleted")
  d.faultCode = nil
  return d
end

--- Sends 404 EntityNotFoundError: "<id> not found." / "The <entity> with <field> '<id>' was not found.".
function M.not_found(entity, id, field)
  return M.send(404, "EntityNotFoundError", { args = { entity, id, field }, target = "HttpRequest" })
end

--- Sends an error. `opts`: args (placeholders of the one detail), details
-- (several details instead), target (ErrorTargetCode, default "Unknown"),
-- headers. The top-level code and message are the first detail's, unless
-- there are several details: then ValidationException, "Validation Error.".
function M.send(status, code, opts)
  opts = opts or {}
  local details = opts.details or { M.detail(code, opts.args) }
  local message = details[1].message
  if #details > 1 then code, message = "ValidationException", CATALOG.ValidationException[2] end
  if status >= 500 then
    for _, d in ipairs(details) do d.faultCode = "Server" end
  end
  return util.json(status, {
    error = { code = code, message = message, target = opts.target or "Unknown", details = details },
  }, opts.headers)
end

return M
