-- The published models (avalara-api.md sections 3, 4, 5 and 8) and a shape
-- check of a payload against a published example: the same JSON types
-- field for field, every field of the example present, no field outside
-- the published model.
local cjson = require "cjson"

local C = {}

C.FIXTURES = "spec/contract/fixtures/"

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
