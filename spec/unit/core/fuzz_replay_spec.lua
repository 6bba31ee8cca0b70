-- The fuzz corpus and every regression input (fuzz/corpus, fuzz/regress)
-- replayed through each harness built with ASan+UBSan (`make fuzz-replay`,
-- which `make test` runs first), and through the Lua bindings of the same
-- parsers: each input gives a value or `nil, err`, never a raise.
local core = require "avalara.core"
local protocol = core.protocol

local function files(dir)
  local out = {}
  local p = io.popen("ls " .. dir .. " 2>/dev/null")
  for name in p:lines() do
    if name ~= "README.md" then out[#out + 1] = dir .. "/" .. name end
  end
  p:close()
  return out
end

local function inputs(harness)
  local all = files("fuzz/corpus/" .. harness)
  for _, f in ipairs(files("fuzz/regress/" .. harness)) do all[#all + 1] = f end
  return all
end

local function read(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("*a")
  f:close()
  return s
end

-- What each harness feeds its parser through the Lua API, and whether the
-- answer has the documented shape (docs/core.md, "protocol").
local function maybe(t) return function(v) return v == nil or type(v) == t end end

local through_lua = {
  json = { function(s) return protocol.json_decode(s) end,
    function(v, err) return v ~= nil or type(err) == "string" end },
  api_error = { function(s) return protocol.parse_api_error(s) end, maybe("table") },
  datetime = { function(s) return protocol.parse_datetime(s) end, maybe("number") },
  form = { function(s) return protocol.pct_decode(s), protocol.form_decode(s) end,
    function(decoded, fields) return type(decoded) == "string" and type(fields) == "table" end },
  token_response = { function(s)
    -- the first byte picks status and content type, as in fuzz/fuzz_token_response.c
    local b = s:byte(1) or 0
    local status = ({ 200, 201, 400, 401, 500 })[b % 5 + 1]
    local ctype = ({ false, "application/json", "application/x-www-form-urlencoded", "text/html" })
      [math.floor(b / 5) % 4 + 1]
    return protocol.parse_token_response(status, ctype or nil, s:sub(2), 1700000000)
  end, function(r)
    return type(r) == "table" and (r.result == "ok" or r.result == "oauth" or r.result == "http" or r.result == "parse")
  end },
  device_response = { function(s)
    -- as in fuzz/fuzz_device_response.c: the first byte picks the status
    local b = s:byte(1) or 0
    return protocol.parse_device_response(({ 200, 201, 400, 401, 500 })[b % 5 + 1], s:sub(2))
  end, function(r)
    return type(r) == "table" and (r.result == "ok" or r.result == "http" or r.result == "parse")
      and r.device_code == nil
  end },
  outcome = { function(s)
    -- as in fuzz/fuzz_outcome.c: the first byte picks status and content type
    if #s < 2 then return "empty" end
    local b = s:byte(1)
    local statuses = { 200, 201, 204, 400, 401, 403, 404, 408, 415, 422, 429, 500, 502, 503 }
    local ctype = ({ false, "application/json", "application/x-www-form-urlencoded", "text/html; charset=utf-8" })
      [math.floor(b / 14) % 4 + 1]
    return protocol.api_outcome(statuses[b % 14 + 1], ctype or nil, s:sub(3))
  end, function(v, err)
    return v == "json" or v == "empty" or (v == nil and core.is_error(err) and type(err.message) == "string")
  end },
  abi = { function(s)
    -- as in fuzz/fuzz_abi.c, through core.request with a transport function (the C ABI's code
    -- builds the request and reads the outcome): byte 1 the status, byte 2 the options, then
    -- URL tail, header value, request body, response correlation id, response body
    if #s < 2 then return "empty" end
    local b0, b1 = s:byte(1), s:byte(2)
    local parts, rest = {}, s:sub(3)
    for _ = 1, 4 do
      local z = rest:find("\0", 1, true)
      parts[#parts + 1] = z and rest:sub(1, z - 1) or rest
      rest = z and rest:sub(z + 1) or ""
    end
    parts[5] = rest
    local statuses = { 200, 201, 204, 100, 400, 401, 403, 404, 408, 422, 429, 500, 503, 0 }
    local methods = { nil, "get", "POST", "HEAD", "put", "x y", "", "DELETE" }
    local token = 'tok3n+s3cr/t"x\\%20y'
    local ok, status, body = pcall(core.request, {
      method = methods[b1 % 8 + 1], url = "http://127.0.0.1:1/" .. parts[1]:sub(1, 490), token = token,
      headers = { ["X-Fuzz"] = parts[2]:sub(1, 255) }, body = math.floor(b1 / 32) % 2 == 1 and parts[3] or nil,
      max_body = math.floor(b1 / 64) % 2 == 1 and 16 or nil,
      transport = function()
        if b1 >= 128 then return nil, parts[5] end
        return { status = statuses[b0 % 14 + 1], body = parts[5],
          headers = { ["Content-Type"] = "application/json", ["X-Correlation-Id"] = parts[4] } }
      end })
    if not ok then return status:find("core.request: ", 1, true) and "argument" or status end
    if status == nil then
      assert(not tostring(body.message):find(token, 1, true), "the token in an error")
      return nil, body
    end
    return status
  end, function(v, err)
    return v == "argument" or v == "empty" or type(v) == "number" or (v == nil and core.is_error(err))
  end },
}

describe("fuzz corpus and regressions", function()
  local harnesses = {}
  for _, f in ipairs(files("fuzz")) do
    local h = f:match("^fuzz/fuzz_(.+)%.c$")
    if h then harnesses[#harnesses + 1] = h end
  end

  it("has a corpus and a Lua replay for every harness", function()
    assert.is_true(#harnesses >= 5)
    for _, h in ipairs(harnesses) do
      assert.truthy(#inputs(h) > 0, "no corpus for " .. h)
      assert.truthy(through_lua[h], "no Lua replay for " .. h)
    end
  end)

  for _, h in ipairs(harnesses) do
    it(h .. ": every input passes the sanitized harness", function()
      local list = inputs(h)
      local p = io.popen("build/fuzz-replay/" .. h .. " " .. table.concat(list, " ") .. " 2>&1; echo rc=$?")
      local out = p:read("*a")
      p:close()
      assert.truthy(out:find("replayed " .. #list .. " input", 1, true), out)
      assert.truthy(out:find("rc=0", 1, true), out)
    end)

    it(h .. ": every input through the Lua binding returns the documented shape, never raises", function()
      local parse, expected = through_lua[h][1], through_lua[h][2]
      for _, path in ipairs(inputs(h)) do
        local ok, v, err = pcall(parse, read(path))
        assert(ok, path .. ": " .. tostring(v))
        assert(expected(v, err), path .. ": unexpected answer " .. tostring(v) .. ", " .. tostring(err))
      end
    end)
  end
end)
