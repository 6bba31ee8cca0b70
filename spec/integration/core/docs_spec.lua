-- docs/core.md documents every name avalara.core exports (like luv's docs
-- check): the module's fields, core.protocol, the token's methods and
-- metamethods, and every field of real errors. Enumerated at run time, so a
-- new export fails here until it is documented.
local core = require "avalara.core"
local emu = require "spec.support.emulator"

local DOC = "docs/core.md"
local ID, KEY = "2000000001", "DEMO-LICENSE-KEY-0001"

local function read(path)
  local f = assert(io.open(path, "r"))
  local text = f:read("*a")
  f:close()
  return text
end

-- The inline code spans of a Markdown text: where a name counts as documented
-- (headings hold theirs in spans too; examples in ``` blocks do not count).
local function code_spans(markdown)
  local spans = {}
  for span in markdown:gmatch("`([^`\n]+)`") do spans[#spans + 1] = span end
  return table.concat(spans, "\n")
end

-- How each kind of export is written in the doc: `core.request`,
-- `protocol.pct_encode`, `token:refresh()`, `__close`, `err.retry_after`.
local function add_names(names, prefix, tbl, skip)
  for k in pairs(tbl) do
    if type(k) == "string" and not (skip and skip[k]) then names[prefix .. k] = true end
  end
end

local function exported_names(token, errors)
  local names = {}
  add_names(names, "core.", core)
  add_names(names, "protocol.", core.protocol)
  local token_mt = debug.getmetatable(token)
  add_names(names, "token:", token_mt.__index)
  add_names(names, "", token_mt, { __index = true })
  local exchange_mt = debug.getmetatable(core.prepare_request { url = "http://127.0.0.1:1/" })
  add_names(names, "exchange:", exchange_mt.__index)
  add_names(names, "", exchange_mt, { __index = true })
  local multi_mt = debug.getmetatable(core.multi())
  add_names(names, "multi:", multi_mt.__index)
  add_names(names, "", multi_mt, { __index = true })
  for _, err in ipairs(errors) do
    add_names(names, "err.", err)
    add_names(names, "", debug.getmetatable(err))
  end
  return names
end

-- The names not written, as a whole word, in a code span of the doc.
local function undocumented(names, markdown)
  local spans, missing = code_spans(markdown), {}
  for name in pairs(names) do
    local escaped = name:gsub("%p", "%%%0")
    if not spans:find("%f[%w_]" .. escaped .. "%f[^%w_]") then missing[#missing + 1] = name end
  end
  table.sort(missing)
  return missing
end

-- The fields avl_error_push can set, read from its source.
local function fields_set_in_c()
  local src = read("src/lua/error.c")
  local body = assert(src:match("\nint avl_error_push%(.-\n}\n"), "avl_error_push not found in src/lua/error.c")
  local fields = {}
  for name in body:gmatch('lua_setfield%(L, %-2, "([%w_]+)"%)') do fields[name] = true end
  for name in body:gmatch('set_string%(L, "([%w_]+)"') do fields[name] = true end
  return fields
end

describe("docs/core.md", function()
  local e, token, names
  local errors = {}

  -- Real errors whose fields together cover the error shape.
  local function collect_errors()
    local function grant_error(secret)
      local _, err = core.client_credentials { token_url = e.http_url .. "/connect/token", client_id = ID,
                                               client_secret = secret }
      return err
    end
    local sections = e.http_url .. "/api/v2/definitions/crossborder/sections"
    errors[#errors + 1] = grant_error("not-the-key")                                  -- oauth, description, body
    errors[#errors + 1] = select(2, core.request { url = sections })                   -- needs_refresh
    e:fault("definitions_sections", "429", 1, { retry_after = 3 })
    errors[#errors + 1] = select(2, core.request { url = sections, token = token })    -- retry_after
    errors[#errors + 1] = select(2, core.request { url = "http://127.0.0.1:1/" })      -- transport
    -- error_uri: the emulator never sends one, so a transport function does.
    errors[#errors + 1] = select(2, core.client_credentials {
      token_url = "https://id.invalid/connect/token", client_id = ID, client_secret = KEY,
      transport = function()
        return { status = 400, headers = { ["Content-Type"] = "application/json" },
                 body = '{"error":"invalid_scope","error_description":"no","error_uri":"https://id.invalid/e"}' }
      end,
    })
  end

  setup(function()
    e = emu.start()
    token = assert(core.client_credentials { token_url = e.http_url .. "/connect/token", client_id = ID,
                                             client_secret = KEY })
    collect_errors()
    names = exported_names(token, errors)
  end)
  teardown(function()
    if token then token:close() end
    if e then e:stop() end
  end)

  it("documents every export, token method, metamethod and error field", function()
    assert.same({}, undocumented(names, read(DOC)))
  end)

  it("enumerates from the real objects", function()
    assert.equal(debug.getregistry()["avalara.token"], debug.getmetatable(token))
    -- the metatable is protected: getmetatable() cannot reach __gc
    assert.equal("avalara.token", getmetatable(token))
    for _, err in ipairs(errors) do assert.is_true(core.is_error(err)) end
    for _, name in ipairs { "core.request", "protocol.json_decode", "token:refresh", "__close", "__tostring",
                            "err.error_uri", "err.retry_after", "err.needs_refresh", "exchange:finish",
                            "token:prepare_refresh", "core.prepare_grant", "__metatable" } do
      assert.is_true(names[name], name)
    end
  end)

  it("sees every field the C code can set on an error", function()
    local missing = {}
    for field in pairs(fields_set_in_c()) do
      if not names["err." .. field] then missing[#missing + 1] = field end
    end
    table.sort(missing)
    assert.same({}, missing)
  end)

  it("reports a name the doc leaves out (the check can fail)", function()
    local doc = read(DOC)
    for _, name in ipairs { "core.pkce", "protocol.null", "token:expires_in", "__gc", "err.request_id" } do
      local without = doc:gsub(name:gsub("%p", "%%%0") .. "%f[^%w_]", "")
      assert.same({ name }, undocumented(names, without))
    end
  end)
end)
