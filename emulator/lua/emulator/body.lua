-- Request bodies of the API routes: the JSON document (AvaTax's 415
-- UnsupportedMediaType and 400 JsonFormatError otherwise) and a checker that
-- collects one ErrorDetail per failing field, `refersTo` naming it.
local util = require "emulator.util"
local errors = require "emulator.errors"

local M = {}

local function blank(v)
  return v == nil or v == util.null or v == ""
end
M.blank = blank

-- "…at character 7" (lua-cjson) -> line and position of that character.
local function json_position(text, message)
  local at = tonumber(tostring(message):match("character (%d+)")) or 1
  local line, line_start = 1, 1
  for nl in text:sub(1, at - 1):gmatch("()\n") do line, line_start = line + 1, nl + 1 end
  return line, at - line_start + 1
end

-- The decoded JSON body, or nil after sending 415 (not JSON) or 400 (not
-- valid JSON).
function M.json()
  if not util.is_json() then
    errors.send(415, "UnsupportedMediaType", { target = "HttpRequestHeaders" })
    return nil
  end
  local text = util.body()
  local body, why = util.json_decode(text)
  if body == nil then
    local line, pos = json_position(text, why)
    errors.send(400, "JsonFormatError", { args = { why, line, pos }, target = "HttpRequest" })
    return nil
  end
  return body
end

function M.is_object(v)
  return type(v) == "table" and (next(v) == nil or v[1] == nil)
end

function M.is_array(v)
  return type(v) == "table" and (next(v) == nil or v[1] ~= nil)
end

-- Collects the details of a validation. `field` is the path of the field
-- in the request body ("item.itemCode", "[2].parameters[1].unit").
function M.checker()
  local details = {}
  local c = { details = details }
  function c.add(code, args, field) details[#details + 1] = errors.detail(code, args, field) end
  function c.string(value, field, max, required)
    if blank(value) then
      if required then c.add("ValueRequiredError", { field }, field) end
      return nil
    end
    if type(value) ~= "string" then
      c.add("ValidationException", { "Field " .. field .. " must be a string." }, field)
      return nil
    end
    -- a length in characters (UTF-8), as the service's message says, not in bytes
    if max and #value - select(2, value:gsub("[\128-\191]", "")) > max then
      c.add("MaxStringLengthError", { field, max }, field)
      return nil
    end
    return value
  end
  -- An integer (JSON number without a fraction), or nil after adding a detail.
  function c.integer(value, field, required)
    if blank(value) then
      if required then c.add("ValueRequiredError", { field }, field) end
      return nil
    end
    if type(value) ~= "number" or value ~= math.floor(value) then
      c.add("ValidationException", { "Field " .. field .. " must be an integer." }, field)
      return nil
    end
    return value
  end
  function c.boolean(value, field, required)
    if blank(value) then
      if required then c.add("ValueRequiredError", { field }, field) end
      return nil
    end
    if type(value) ~= "boolean" then
      c.add("ValidationException", { "Field " .. field .. " must be true or false." }, field)
      return nil
    end
    return value
  end
  -- Sends the collected details (the first one's code on top, or
  -- ValidationException for several); true when there were any.
  function c.send(status)
    if #details == 0 then return false end
    errors.send(status, details[1].code, { details = details, target = "HttpRequest" })
    return true
  end
  return c
end

return M
