-- Issue 20, finding 8 in a real nginx: the cosocket transport writes its
-- request line and header lines itself, and the subrequest transport hands
-- the Authorization value to a proxy_set_header, which nginx does not
-- check. Called directly with a value holding CR/LF (or a URL with a
-- space), each answers nil, err and nothing reaches the listener
-- (spec/support/capture_server.lua); through a client, a token with a line
-- break is refused before any transport runs (exchange:request()).
local nginx = require "spec.support.nginx"
local hostile = require "spec.support.hostile"

local CONF = [[
{{PREAMBLE}}
worker_processes 1;
events { worker_connections 64; }
http {
    {{HTTP_BASICS}}
    init_by_lua_block {
        cosocket = require("avalara.openresty").transport { timeout = 5 }
        subrequest = require("avalara.openresty.subrequest").transport("/_avalara")
        UNFIT = {
            header = { method = "GET", url = "{{CAPTURE}}/h", headers = { ["X-Trace"] = "a\r\nX-Injected: yes" } },
            auth = { method = "GET", url = "{{CAPTURE}}/a", headers = { Authorization = "Bearer t\r\nX-Injected: yes" } },
            url_space = { method = "GET", url = "{{CAPTURE}}/a b HTTP/1.1\r\nX-Injected: yes\r\nX:" },
            url_crlf = { method = "GET", url = "{{CAPTURE}}/a\r\nX-Injected: yes" },
            method = { method = "GET /x HTTP/1.1\r\nX-Injected: yes\r\n", url = "{{CAPTURE}}/m" },
            name = { method = "GET", url = "{{CAPTURE}}/n", headers = { ["X-A: b\r\nX-Injected"] = "yes" } },
        }
    }
    server {
        listen 127.0.0.1:{{PORT}};
        default_type text/plain;
        location /_avalara/ {
            internal;
            proxy_pass_request_headers off;
            proxy_set_header Authorization $avalara_authorization;
            proxy_set_header Content-Type $avalara_content_type;
            proxy_http_version 1.1;
            proxy_pass {{CAPTURE}}/;
        }
        location = /_avalara_variables {
            internal;
            set $avalara_authorization "";
            set $avalara_content_type "";
            return 404;
        }
        location = /unfit {
            content_by_lua_block {
                local t = ngx.var.arg_via == "subrequest" and subrequest or cosocket
                local r, err = t(UNFIT[ngx.var.arg_case])
                ngx.say(r and ("sent " .. r.status) or (err.kind .. ": " .. err.message))
            }
        }
        location = /fit {
            content_by_lua_block {
                local t = ngx.var.arg_via == "subrequest" and subrequest or cosocket
                local r, err = t { method = "GET", url = "{{CAPTURE}}/fit",
                    headers = { Authorization = "Bearer tok-1", ["X-Trace"] = "a\tb" } }
                if not r then return ngx.say("error ", err.message) end
                ngx.say(require("cjson").decode(r.body).raw)
            }
        }
        location = /count {
            content_by_lua_block {
                local r = cosocket { method = "GET", url = "{{CAPTURE}}/count" }
                ngx.say(require("cjson").decode(r.body).n)
            }
        }
        location = /client {
            content_by_lua_block {
                local avalara = require "avalara"
                local c = avalara.new { environment = "local", emulator_url = "{{CAPTURE}}", company_id = 1001,
                    retries = false, token_source = { token = function()
                        return { access_token = "tok\r\nX-Injected: yes", token_type = "Bearer" } end } }
                local ok, m, err = pcall(c.sections, c)
                ngx.say(tostring(ok), " ", tostring(m), " ", err and (err.kind .. ": " .. err.message) or "-")
            }
        }
    }
}
]]

describe("the OpenResty transports refuse values that would add request lines (issue 20, finding 8)", function()
  local cap, n

  setup(function()
    cap = hostile.spawn("spec/support/capture_server.lua")
    n = nginx.start(CONF, { CAPTURE = cap.url })
  end)
  teardown(function()
    if n then n:stop() end
    if cap then cap:stop() end
  end)

  local function get(path)
    local status, body = n:get(path)
    assert.equal(200, status, n:log())
    return body
  end
  local function count() return tonumber(get("/count")) end

  for _, via in ipairs { "cosocket", "subrequest" } do
    it(via .. ": each unfit request gives nil, err; none reaches the listener", function()
      local before = count()
      for _, case in ipairs { "header", "auth", "url_space", "url_crlf", "method", "name" } do
        local out = get("/unfit?via=" .. via .. "&case=" .. case)
        assert.matches("^transport: request not sent: ", out, nil, case)
        assert.is_nil(out:find("Injected", 1, true), case)
      end
      assert.equal(before, count())
    end)

    it(via .. ": a fit request goes out with its Authorization as one line", function()
      local raw = get("/fit?via=" .. via)
      assert.truthy(raw:find("\r\nAuthorization: Bearer tok-1\r\n", 1, true), raw)
    end)
  end

  it("a client whose token has a line break: nil, err, no raise, nothing sent", function()
    local before = count()
    assert.equal("true nil transport: request not sent: the credential holds a control character (CR, LF, NUL, ...)\n",
      get("/client"))
    assert.equal(before, count())
  end)
end)
