-- The OpenResty hot path (issue 17) in a real nginx, one worker: the
-- cosocket transport keeps its connection to the API alive across requests
-- (the emulator's connection counter), and the subrequest transport
-- (avalara.openresty.subrequest) works end to end through an internal
-- proxy_pass location, with errors mapped as over any transport and the
-- caller's own headers never forwarded.
local emu = require "spec.support.emulator"
local nginx = require "spec.support.nginx"

local CONF = [[
{{PREAMBLE}}
worker_processes 1;
events { worker_connections 1024; }
http {
    {{HTTP_BASICS}}
    lua_shared_dict avalara_tokens 1m;

    upstream avalara_api {
        server {{EMULATOR_HOSTPORT}};
        keepalive 8;
    }

    init_by_lua_block {
        local avalara = require "avalara"
        local opts = { environment = "local", emulator_url = "{{HTTP}}", account_id = "2000000001",
            license_key = "DEMO-LICENSE-KEY-0001", company_id = 1001, shared_dict = "avalara_tokens" }
        cosocket_client = avalara.new(opts)
        opts.transport = require("avalara.openresty.subrequest").transport("/_avalara")
        subrequest_client = avalara.new(opts)
    }

    server {
        listen 127.0.0.1:{{PORT}};
        default_type text/plain;

        {{SUBREQUEST_LOCATIONS}}

        location = /sections {
            content_by_lua_block {
                local c = ngx.var.arg_via == "subrequest" and subrequest_client or cosocket_client
                local s, err = c:sections()
                if not s then ngx.status = 502; return ngx.say(err.kind, " ", err.message) end
                ngx.say(#s)
            }
        }
        location = /classify {
            content_by_lua_block {
                local c = ngx.var.arg_via == "subrequest" and subrequest_client or cosocket_client
                local m, err = c:classify({ itemCode = "SR-1", description = "men's cotton t-shirt" }, { country = "US" })
                if m then m, err = c:wait(m, { timeout = 20, interval = 0.05 }) end
                if not m then ngx.status = 502; return ngx.say(err.kind, " ", err.message) end
                ngx.say(m.hsCode)
            }
        }
        location = /missing {
            content_by_lua_block {
                local m, err = subrequest_client:classification("1001-NOPE-US")
                ngx.say(m and "found" or (err.kind .. " " .. err.status .. " " .. tostring(err.code) .. " " .. tostring(err.number)))
            }
        }
    }
}
]]

describe("OpenResty hot path", function()
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

  it("keeps the cosocket connection to the API alive across requests", function()
    assert.equal(200, (n:get("/sections"))) -- the token and the first connection
    local before = e:counters()
    for _ = 1, 20 do
      local status, body = n:get("/sections")
      assert.equal(200, status, body)
      assert.equal("21\n", body)
    end
    local after = e:counters()
    assert.equal(20, after.requests - before.requests)
    assert.equal(0, after.connections - before.connections)
  end)

  it("runs the client through an internal proxy_pass location (subrequests), keep-alive included", function()
    local status, body = n:get("/sections?via=subrequest")
    assert.equal(200, status, n:log())
    assert.equal("21\n", body)
    local before = e:counters()
    for _ = 1, 10 do assert.equal(200, (n:get("/sections?via=subrequest"))) end
    assert.equal(0, e:counters().connections - before.connections)
    status, body = n:get("/classify?via=subrequest")
    assert.equal(200, status, body)
    assert.equal("610910\n", body)
  end)

  it("maps the API's errors through subrequests as over any transport", function()
    local status, body = n:get("/missing")
    assert.equal(200, status)
    assert.equal("api 404 EntityNotFoundError 4\n", body)
  end)
end)
