-- The fault-injection matrix: every operation (each core grant, and the
-- client's classify, classification, wait, classify_batch and definitions
-- calls) against every emulator fault kind, with the documented outcome:
-- the client recovers from one fault by retrying (or by renewing an expired
-- token); the core grants, which never retry, fail with the right `kind`.
-- Every cell finishes within its deadline and no error carries a secret.
-- The matrix is printed as a table at the end.
local core = require "avalara.core"
local emu = require "spec.support.emulator"
local H = require "spec.support.client"
local http = require "socket.http"
local ltn12 = require "ltn12"
local socket = require "socket"

local ID, KEY = H.ACCOUNT, H.KEY
local PARTNER, PSECRET = "demo-partner", "demo-partner-secret"
local REDIRECT = "http://127.0.0.1/callback"
local TIMEOUT = 1 -- seconds: a stall outlasts it
local MAX_BODY = 100000 -- the oversized fault sends twice that

-- Fault kinds (columns): the emulator's, plus every access token expiring.
-- A reset is served twice: libcurl itself retries once when a reused
-- connection closes without a response, and both exchanges must fail for
-- the outcome not to depend on whether the connection was reused.
local FAULTS = {
  { name = "500" }, { name = "502" }, { name = "503", extra = { retry_after = 1 } },
  { name = "429", extra = { retry_after = 0 } }, { name = "reset", count = 2 },
  { name = "stall", extra = { stall_seconds = 3 } }, { name = "truncated" }, { name = "invalid_json" },
  { name = "html" }, { name = "oversized", extra = { size = 2 * MAX_BODY } }, { name = "expired" },
}

-- The outcome of a core grant under each fault (docs/core.md, "Errors"):
-- "ok" or the error kind. A truncated 2xx is `parse`, a body over max_body
-- `http`; grants take no token, so "expired" does not touch them; revoke
-- takes any 200 as success, readable or not.
local GRANT_OUTCOME = {
  ["500"] = "http", ["502"] = "http", ["503"] = "http", ["429"] = "http", reset = "transport",
  stall = "timeout", truncated = "parse", invalid_json = "parse", html = "http",
  oversized = "http", expired = "ok",
}
local REVOKE_OUTCOME = setmetatable({ invalid_json = "ok" }, { __index = GRANT_OUTCOME })

local function get_location(url)
  local _, code, headers = http.request { url = url, redirect = false, sink = ltn12.sink.null() }
  assert(code == 302, "authorize answered " .. tostring(code))
  return headers.location
end

local function query(url, name)
  local v = url:match("[?&]" .. name .. "=([^&]*)")
  return v and (v:gsub("%%(%x%x)", function(h) return string.char(tonumber(h, 16)) end))
end

local function token_args(e, extra)
  local args = { token_url = e.http_url .. "/connect/token", client_id = ID, client_secret = KEY,
    timeout = TIMEOUT, max_body = MAX_BODY }
  for k, v in pairs(extra) do args[k] = v end
  return args
end

-- Operations (rows): `route` is where the fault is armed; `prepare` runs
-- before it is armed; `run` returns a result or nil, err.
-- The lists return records, count | nil, err: the records, or nil, err.
local function records(list, count_or_err)
  if list then return list end
  return nil, count_or_err
end

local OPS = {
  { name = "client_credentials", route = "connect_token", grant = true,
    run = function(e) return core.client_credentials(token_args(e, { scope = "hs-code-classification" })) end },
  { name = "authorization_code", route = "connect_token", grant = true,
    prepare = function(e)
      local loc = get_location(core.authorize_url { url = e.http_url .. "/connect/authorize", client_id = ID,
        redirect_uri = REDIRECT, scope = "hs-code-classification" })
      return query(loc, "code")
    end,
    run = function(e, code)
      return core.authorization_code(token_args(e, { code = code, redirect_uri = REDIRECT }))
    end },
  { name = "refresh_token", route = "connect_token", grant = true,
    prepare = function(e)
      local loc = get_location(core.authorize_url { url = e.http_url .. "/connect/authorize", client_id = ID,
        redirect_uri = REDIRECT, scope = "hs-code-classification" })
      local t = assert(core.authorization_code(token_args(e, { code = query(loc, "code"), redirect_uri = REDIRECT })))
      return t:refresh_token()
    end,
    run = function(e, refresh) return core.refresh_token(token_args(e, { refresh_token = refresh })) end },
  { name = "generate_token", route = "oauth_generate_token", grant = true,
    run = function(e)
      return core.generate_token { url = e.http_url .. "/oauth/generate_token", client_id = PARTNER,
        client_secret = PSECRET, timeout = TIMEOUT, max_body = MAX_BODY }
    end },
  { name = "revoke", route = "connect_revocation", grant = true, outcome = REVOKE_OUTCOME,
    prepare = function(e) return assert(core.client_credentials(token_args(e, {}))):access_token() end,
    run = function(e, tok)
      return core.revoke { url = e.http_url .. "/connect/revocation", client_id = ID, client_secret = KEY,
        token = tok, timeout = TIMEOUT, max_body = MAX_BODY }
    end },
  { name = "classify", route = "classification_create",
    run = function(_, _, c)
      return c:classify({ itemCode = "M-1", description = "men's cotton t-shirt" }, { country = "US" })
    end },
  { name = "classification", route = "classification_get",
    prepare = function(_, c)
      return assert(c:classify({ itemCode = "M-2", description = "porcelain mug" }, { country = "US" })).id
    end,
    run = function(_, id, c) return c:classification(id) end },
  { name = "wait", route = "classification_get",
    prepare = function(_, c)
      return assert(c:classify({ itemCode = "M-3", description = "bicycle" }, { country = "US" })).id
    end,
    run = function(_, id, c) return c:wait(id, { timeout = 20, interval = 0.01 }) end },
  { name = "classify_batch", route = "classification",
    run = function(_, _, c)
      local items = {}
      for i = 1, 4 do items[i] = { itemCode = "B-" .. i, description = "men's cotton t-shirt" } end
      local results, summary = c:classify_batch(items, { country = "US", interval = 0.01, timeout = 20 })
      if summary.failed > 0 then
        for _, r in ipairs(results) do if core.is_error(r) then return nil, r end end
      end
      return results
    end },
  { name = "sections", route = "definitions_sections", run = function(_, _, c) return records(c:sections()) end },
  { name = "hs_codes", route = "definitions_children",
    run = function(_, _, c) return records(c:hs_codes("US", "6109")) end },
  { name = "hierarchy", route = "definitions_hierarchy",
    run = function(_, _, c) return records(c:hierarchy("US", "610910")) end },
}

local SECRETS = { KEY, PSECRET }

local function assert_no_secret(err, tokens)
  local texts = { tostring(err), tostring(err.message), tostring(err.body), tostring(err.error_description) }
  for _, text in ipairs(texts) do
    for _, s in ipairs(SECRETS) do assert.falsy(text:find(s, 1, true), "secret in error: " .. text) end
    for _, t in ipairs(tokens) do assert.falsy(text:find(t, 1, true), "token in error: " .. text) end
  end
end

-- The client's API requests go through both bindings of the core under
-- LuaJIT (docs/core.md, "The LuaJIT FFI binding"), the classic one elsewhere.
local BINDINGS = type(jit) == "table" and { "ffi", "classic" } or { "classic" }

describe("fault-injection matrix", function()
  local e
  local table_rows = {}
  local by_binding = { ffi = {}, classic = {} }  -- "op/fault" -> outcome, per binding

  setup(function() e = emu.start() end)
  teardown(function()
    if e then e:stop() end
    -- the matrix, operation x fault -> outcome
    local header = { ("%-19s"):format("operation") }
    for _, f in ipairs(FAULTS) do header[#header + 1] = ("%-14s"):format(f.name) end
    print("\n" .. table.concat(header))
    for _, op in ipairs(OPS) do
      local row = { ("%-19s"):format(op.name) }
      for _, f in ipairs(FAULTS) do row[#row + 1] = ("%-14s"):format(table_rows[op.name .. "/" .. f.name] or "?") end
      print(table.concat(row))
    end
  end)
  before_each(function()
    e:reset()
    e:configure { classification_delay = 0 }
  end)

  for _, binding in ipairs(BINDINGS) do
    for _, op in ipairs(OPS) do
      -- grants run on the classic binding whatever the client's: one pass is theirs
      for _, f in ipairs((binding == BINDINGS[1] or not op.grant) and FAULTS or {}) do
        local want = op.grant and (op.outcome or GRANT_OUTCOME)[f.name] or "ok"
        it(op.name .. " x " .. f.name .. " (" .. binding .. ") -> " .. (want == "ok" and (op.grant and "ok" or "recovers")
          or want), function()
          local c = H.client(e, { timeout = TIMEOUT, max_body = MAX_BODY, binding = binding,
            retries = { max_attempts = 3, base_delay = 0.01, max_delay = 0.05, deadline = 15 } })
          assert.equal(binding, c:transport_info().binding)
          local secrets = {}
          if not op.grant then secrets[1] = assert(c:token()):access_token() end
          local arg = op.prepare and op.prepare(e, c)
          if f.name == "expired" then
            assert(e:request("POST", "/_emulator/tokens/expire"))
          else
            e:fault(op.route, f.name, f.count or 1, f.extra)
          end
          local started = socket.gettime()
          local result, err = op.run(e, arg, c)
          local elapsed = socket.gettime() - started
          local outcome = result ~= nil and "ok" or (type(err) == "table" and err.kind or tostring(err))
          outcome = outcome == "ok" and (op.grant and "ok" or "recovered") or outcome
          if binding == BINDINGS[1] then table_rows[op.name .. "/" .. f.name] = outcome end
          by_binding[binding][op.name .. "/" .. f.name] = outcome
          outcome = outcome:gsub("^recovered$", "ok")
          if type(arg) == "string" and op.grant then secrets[#secrets + 1] = arg end -- a code or token
          if err ~= nil then assert_no_secret(err, secrets) end
          assert.equal(want, outcome, err and tostring(err))
          -- no hang: a grant makes one exchange (a stall costs TIMEOUT); the client's deadline bounds the rest
          assert.is_true(elapsed < (op.grant and TIMEOUT + 2 or 15 + TIMEOUT + 2), "took " .. elapsed .. " s")
          if f.name ~= "expired" then
            local served = e:counters().faults[op.route == "classification" and "classification_create" or op.route]
            assert.is_true(served ~= nil and (served[f.name] or 0) >= 1, "the fault was served")
          end
        end)
      end
    end
  end

  if #BINDINGS > 1 then
    it("gives the same outcome in every cell on both bindings", function()
      local ffi_cells = {}
      for k in pairs(by_binding.classic) do ffi_cells[k] = by_binding.ffi[k] end
      assert.is_true(next(by_binding.classic) ~= nil)
      assert.same(by_binding.classic, ffi_cells)
    end)
  end
end)
