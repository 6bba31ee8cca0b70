-- A `timeout` bounds the whole call inside nginx too (issue 23, item 8): a
-- `wait{timeout = 3}` whose read stalls answers after 3 s with kind timeout,
-- not after the stall (the cosocket's timeout is clipped to the time left).
local emu = require "spec.support.emulator"
local nginx = require "spec.support.nginx"
local clock = require "avalara.clock"

-- The margin a deadline may be overrun by (the last read's end, a loaded machine).
local MARGIN = 1.0

local CONF = [[
{{PREAMBLE}}
worker_processes 1;
events { worker_connections 1024; }
http {
    {{HTTP_BASICS}}
    lua_shared_dict avalara_tokens 1m;

    init_by_lua_block {
        local avalara = require "avalara"
        client = avalara.new { environment = "local", emulator_url = "{{HTTP}}", account_id = "2000000001",
            license_key = "DEMO-LICENSE-KEY-0001", company_id = 1001, shared_dict = "avalara_tokens", timeout = 30 }
    }

    server {
        listen 127.0.0.1:{{PORT}};
        default_type text/plain;

        location = /classify {
            content_by_lua_block {
                local m, err = client:classify({ itemCode = "DL-1", description = "wooden chair" }, { country = "US" })
                if not m then ngx.status = 502; return ngx.say(err.kind, " ", err.message) end
                ngx.say(m.id)
            }
        }
        location = /wait {
            content_by_lua_block {
                local clock = require "avalara.clock"
                local t0 = clock.now()
                local m, err = client:wait(ngx.var.arg_id, { timeout = 3, interval = 0.1 })
                ngx.say(m and m.status or err.kind, " ", string.format("%.2f", clock.now() - t0))
            }
        }
    }
}
]]

describe("OpenResty: a timeout bounds the whole call", function()
  local e, n

  setup(function()
    e = emu.start()
    e:configure { classification_delay = 60 }
    n = nginx.start(CONF, { HTTP = e.http_url })
  end)
  teardown(function()
    if n then n:stop() end
    if e then e:stop() end
  end)

  it("wait{timeout = 3} with a stalled read answers within 3 s (+" .. MARGIN .. " s), kind timeout", function()
    local status, id = n:get("/classify")
    assert.equal(200, status, id)
    e:fault("classification_get", "stall", 10, { stall_seconds = 8 })
    local t0 = clock.now()
    local body
    status, body = n:get("/wait?id=" .. id:gsub("%s+$", ""))
    local took = clock.now() - t0
    assert.equal(200, status, body)
    local kind, inside = body:match("^(%S+) (%S+)")
    assert.equal("timeout", kind, body)
    assert.is_true(tonumber(inside) <= 3 + MARGIN, body)
    assert.is_true(took <= 3 + MARGIN, "took " .. took .. " s")
  end)
end)
