-- The JSON decoder core.request uses (src/lua/json.c, via protocol.json_decode)
-- decodes what lua-cjson decodes, the same way: the published example
-- payloads, the fuzz corpus and hand-picked edge cases give equal values
-- (numbers compared by value; integral ones are integers on Lua 5.3+).
local core = require "avalara.core"
local cjson = require "cjson"
local emu = require "spec.support.emulator"

local decode = core.protocol.json_decode

local function files(dir)
  local list, p = {}, io.popen('ls "' .. dir .. '" 2>/dev/null')
  for name in p:lines() do
    if not name:match("%.md$") then list[#list + 1] = dir .. "/" .. name end
  end
  p:close()
  return list
end

-- Deep equality; a difference is described by its path.
local function same(a, b, path)
  if type(a) ~= type(b) then return false, path .. ": " .. type(a) .. " vs " .. type(b) end
  if type(a) ~= "table" then
    if a ~= b then return false, path .. ": " .. tostring(a) .. " vs " .. tostring(b) end
    return true
  end
  for k, v in pairs(a) do
    local ok, why = same(v, b[k], path .. "." .. tostring(k))
    if not ok then return false, why end
  end
  for k in pairs(b) do
    if a[k] == nil then return false, path .. "." .. tostring(k) .. ": missing" end
  end
  return true
end

describe("the JSON decoder of core.request", function()
  local inputs = {}
  setup(function()
    for _, dir in ipairs { "spec/conformance/fixtures", "fuzz/corpus/json" } do
      for _, path in ipairs(files(emu.repo_root() .. "/" .. dir)) do
        local s = emu.read_file(path)
        if pcall(cjson.decode, s) then inputs[#inputs + 1] = { path, s } end
      end
    end
  end)

  it("decodes every published example and corpus document as lua-cjson does", function()
    assert.truthy(#inputs >= 15, #inputs .. " inputs")
    for _, input in ipairs(inputs) do
      local ok, why = same(cjson.decode(input[2]), decode(input[2]), input[1])
      assert(ok, why)
    end
  end)

  it("agrees on the edge cases", function()
    for _, s in ipairs {
      '{"a":[1,2,{"b":null}],"c":"x\\u00e9\\ud83d\\ude00","d":-0.5,"e":1e3,"f":true,"g":false,"h":[]}',
      '[[[[[]]]],{},"",0,-1,1.5,12345678,"\\"\\\\\\/\\b\\f\\n\\r\\t"]',
      '{"dup":1,"dup":2}', '"just a string"', "42", "null", '  {"spaced" : [ 1 , 2 ] }  ',
    } do
      local ok, why = same(cjson.decode(s), decode(s), s)
      assert(ok, why)
    end
    assert.equal(cjson.null, decode("null"))
  end)

  it("reads integers exactly (lua-cjson rounds above 2^53), and integral numbers as integers on Lua 5.3+", function()
    local t = decode('{"id":134333,"big":123456789012345678,"float":1.0,"exp":2e3,"half":0.5}')
    assert.equal(134333, t.id)
    assert.equal(0.5, t.half)
    if math.type then
      assert.equal("integer", math.type(t.id))
      assert.equal("integer", math.type(t.big))
      assert.equal(123456789012345678, t.big)
      assert.equal("integer", math.type(t.float))
      assert.equal("integer", math.type(t.exp))
      assert.equal("float", math.type(t.half))
    end
  end)

  it("refuses what is not JSON, with the byte where it stopped", function()
    for s, why in pairs {
      ["[1,]"] = "invalid number at byte 3", ["{"] = "expected a member name at byte 1", [""] = "empty input at byte 0",
      ['"\1"'] = "control character in string at byte 1", ["[1] x"] = "trailing data at byte 4",
      ["nul"] = "invalid literal at byte 0",
    } do
      local v, err = decode(s)
      assert.is_nil(v, s)
      assert.equal(why, err)
    end
    -- core.request's decoder allows 1000 levels, the protocol binding the DOM's 64
    assert.is_nil(decode(("["):rep(65) .. ("]"):rep(65)))
  end)
end)
