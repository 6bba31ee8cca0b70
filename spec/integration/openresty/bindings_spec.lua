-- The OpenResty transports on both bindings of the core (issue 27): in one
-- nginx, clients on the FFI binding and on the classic one, over cosockets
-- and over subrequests, make the same calls against the emulator and must
-- give the same results: models, headers, and errors field by field and in
-- `tostring`. On the FFI binding a request crosses no classic exchange
-- (`core.prepare_request` is never called: the transport sends the bytes
-- of `ex:wire()` and feeds the answer to the FFI exchange).
local emu = require "spec.support.emulator"
local nginx = require "spec.support.nginx"

local CONF = [[
{{PREAMBLE}}
worker_processes 1;
events { worker_connections 64; }
http {
    {{HTTP_BASICS}}
    lua_shared_dict avalara_tokens 1m;
    upstream avalara_api { server {{EMULATOR_HOSTPORT}}; keepalive 8; }
    init_by_lua_block {
        local core = require "avalara.core"
        local prepare = core.prepare_request
        prepared = 0
        core.prepare_request = function(...) prepared = prepared + 1; return prepare(...) end
        local avalara = require "avalara"
        clients = {}
        for _, binding in ipairs { "ffi", "classic" } do
            local opts = { environment = "local", emulator_url = "{{HTTP}}", account_id = "2000000001",
                license_key = "DEMO-LICENSE-KEY-0001", company_id = 1001, shared_dict = "avalara_tokens",
                binding = binding }
            clients[binding .. "-cosocket"] = avalara.new(opts)
            opts.transport = require("avalara.openresty.subrequest").transport("/_avalara")
            clients[binding .. "-subrequest"] = avalara.new(opts)
        end
        -- a canonical text of a value: keys sorted, the fields that differ per response left out
        local VARIES = { request_id = true, date = true, ["x-correlation-id"] = true, ["x-request-id"] = true,
            connection = true, ["keep-alive"] = true }
        function canon(v)
            if type(v) ~= "table" then return tostring(v) end
            local keys = {}
            for k in pairs(v) do if not VARIES[k] then keys[#keys + 1] = k end end
            table.sort(keys, function(a, b) return tostring(a) < tostring(b) end)
            local out = {}
            for _, k in ipairs(keys) do out[#out + 1] = tostring(k) .. "=" .. canon(v[k]) end
            return "{" .. table.concat(out, ",") .. "}"
        end
    }
    server {
        listen 127.0.0.1:{{PORT}};
        default_type text/plain;
        {{SUBREQUEST_LOCATIONS}}
        location = /run {
            content_by_lua_block {
                local c = clients[ngx.var.arg_client]
                local what = ngx.var.arg_what
                local before = prepared
                local out
                if what == "classify" then
                    local m, err = c:classify({ itemCode = "BD-1", description = "men's cotton t-shirt" },
                        { country = "US" })
                    out = { canon(m), canon(err), err and tostring(err) }
                elseif what == "missing" then
                    local m, err = c:classification("1001-NOPE-US")
                    -- the request id (the emulator's, per response) is there; its value differs
                    out = { canon(m), canon(err), (tostring(err):gsub("%[request id [%x-]+%]", "[request id]")),
                        tostring(err.request_id ~= nil) }
                elseif what == "call" then
                    local s, body, headers = c:call("GET", "/api/v2/companies/1001/classifications/hs/1001-BD-1-US")
                    out = { canon(s), canon(body), canon(headers) }
                elseif what == "binding" then
                    out = { c:transport_info().binding }
                end
                ngx.say(table.concat(out, "\n"))
                ngx.say("prepared ", prepared - before)
            }
        }
    }
}
]]

describe("the OpenResty transports on both bindings", function()
  local e, n

  setup(function()
    e = emu.start()
    e:configure { classification_delay = 0 }
    n = nginx.start(CONF, { HTTP = e.http_url, EMULATOR_HOSTPORT = e.http_url:match("//(.+)$") })
  end)
  teardown(function()
    if n then n:stop() end
    if e then e:stop() end
  end)

  local function run(client, what)
    local status, body = n:get("/run?client=" .. client .. "&what=" .. what)
    assert.equal(200, status, (body or "") .. n:log())
    local result, prepared = body:match("^(.*)\nprepared (%d+)\n$")
    assert(result, body)
    return result, tonumber(prepared)
  end

  it("has each client on the binding it asked for", function()
    assert.equal("ffi", (run("ffi-cosocket", "binding")))
    assert.equal("classic", (run("classic-cosocket", "binding")))
  end)

  for _, via in ipairs { "cosocket", "subrequest" } do
    it("gives the same models, headers and errors on both bindings over " .. via .. "s", function()
      for _, what in ipairs { "classify", "call", "missing" } do
        local ffi_result, ffi_prepared = run("ffi-" .. via, what)
        local classic_result, classic_prepared = run("classic-" .. via, what)
        assert.equal(classic_result, ffi_result, what)
        assert.equal(0, ffi_prepared, what .. ": the FFI binding's request went through a classic exchange")
        assert.is_true(classic_prepared >= 1, what)
      end
    end)
  end
end)
