-- The cosocket transport's reader (avalara.openresty.transport) in a real
-- nginx against responses cut the way networks cut them: header blocks and
-- bodies across several reads, chunked bodies with extensions and
-- trailers, bodies that end at close, bare LF line endings, a body shorter
-- than its Content-Length, and one larger than max_body. Each is read the
-- way the libcurl transport reads it, and keep-alive survives the split
-- responses.
local nginx = require "spec.support.nginx"
local hostile = require "spec.support.hostile"

local CONF = [[
{{PREAMBLE}}
worker_processes 1;
events { worker_connections 64; }
http {
    {{HTTP_BASICS}}
    init_by_lua_block {
        transport = require("avalara.openresty").transport { max_body = 4096, timeout = 5 }
    }
    server {
        listen 127.0.0.1:{{PORT}};
        default_type text/plain;
        location = /wire {
            content_by_lua_block {
                local n = tonumber(ngx.var.arg_n) or 1
                for _ = 1, n do
                    local r, err = transport { method = "GET", url = "{{WIRE}}" .. ngx.var.arg_path,
                        headers = { Accept = "application/json" } }
                    if not r then return ngx.say("error ", err.kind, " ", err.status or "-", " ", err.message) end
                    ngx.say(r.status, " ", #r.body, " ", r.body, " ", r.headers["content-type"] or "-",
                        " ", r.headers["x-long"] and #r.headers["x-long"] or "-")
                end
            }
        }
    }
}
]]

local BODY = '{"hsCode":"610910","status":"CLASSIFIED"}'

describe("the cosocket transport's reader", function()
  local wire, n

  setup(function()
    wire = hostile.spawn("spec/support/wire_server.lua")
    n = nginx.start(CONF, { WIRE = wire.url })
  end)
  teardown(function()
    if n then n:stop() end
    if wire then wire:stop() end
  end)

  local function get(path, times)
    local status, body = n:get("/wire?path=" .. path .. "&n=" .. (times or 1))
    assert.equal(200, status, n:log())
    return body
  end

  it("reads a response cut mid-line and mid-body, and reuses the connection", function()
    local line = "200 " .. #BODY .. " " .. BODY .. " application/json 79\n"
    assert.equal(line:rep(3), get("/split", 3))
  end)

  it("reads chunked bodies split across reads, with extensions and trailers", function()
    local line = "200 " .. #BODY .. " " .. BODY .. " application/json -\n"
    assert.equal(line:rep(2), get("/chunked", 2))
  end)

  it("reads a body without a length until the server closes", function()
    assert.equal("200 " .. #BODY .. " " .. BODY .. " application/json -\n", get("/to-close"))
  end)

  it("reads bare LF line endings", function()
    assert.equal("200 " .. #BODY .. " " .. BODY .. " application/json -\n", get("/lf"))
  end)

  it("calls a body shorter than its Content-Length a truncated response", function()
    assert.matches("^error parse 200 response truncated: closed\n$", get("/truncated"))
  end)

  it("refuses a body larger than max_body", function()
    assert.equal("error http 200 response body exceeds max_body (4096 bytes)\n", get("/big"))
  end)
end)
