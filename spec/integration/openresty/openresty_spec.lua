-- The library inside a real nginx (Debian nginx-light + libnginx-mod-http-lua,
-- LuaJIT build of the core), driven over HTTP: requests go through
-- cosockets without blocking the worker, one token serves every worker,
-- HTTPS is verified against the configured CA, batches run on light
-- threads, and the example configuration works as documented.
local emu = require "spec.support.emulator"
local nginx = require "spec.support.nginx"
local socket = require "socket"

local CONF = [[
load_module {{MODULES}}/ndk_http_module.so;
load_module {{MODULES}}/ngx_http_lua_module.so;
worker_processes {{WORKERS}};
daemon off;
error_log {{TMP}}/error.log notice;
events { worker_connections 1024; }
http {
    access_log off;
    {{TEMP_PATHS}}
    lua_package_path "{{ROOT}}/lua/?.lua;{{ROOT}}/lua/?/init.lua;;";
    lua_package_cpath "{{ROOT}}/build/luajit/?.so;;";
    lua_shared_dict avalara_tokens 1m;
    lua_ssl_trusted_certificate {{CA}};

    init_by_lua_block {
        local avalara = require "avalara"
        function make_client(url, extra)
            local o = { environment = "local", emulator_url = url, account_id = "2000000001",
                license_key = "DEMO-LICENSE-KEY-0001", company_id = 1001, shared_dict = "avalara_tokens",
                leeway = {{LEEWAY}}, timeout = 5 }
            for k, v in pairs(extra or {}) do o[k] = v end
            if o.shared_dict == false then o.shared_dict = nil end
            return avalara.new(o)
        end
        client = make_client("{{HTTP}}")
        tls_client = make_client("{{HTTPS}}")
        -- blocking is allowed here: this call goes through libcurl
        init_result = "{{INIT_CALL}}" == "yes" and #assert(make_client("{{HTTP}}", { shared_dict = false }):sections()) or 0
    }

    server {
        listen 127.0.0.1:{{PORT}};
        default_type text/plain;

        location = /ping { return 200 "pong"; }

        location = /sections {
            content_by_lua_block {
                local s, err = client:sections()
                if not s then ngx.status = 502; return ngx.say(err.kind, " ", err.message) end
                ngx.say(#s)
            }
        }
        location = /classify {
            content_by_lua_block {
                local m, err = client:classify({ itemCode = "NB-1", description = "men's cotton t-shirt" }, { country = "US" })
                if m then m, err = client:wait(m, { timeout = 20, interval = 0.05 }) end
                if not m then ngx.status = 502; return ngx.say(err.kind, " ", err.message) end
                ngx.say(m.hsCode)
            }
        }
        location = /batch {
            content_by_lua_block {
                local items = {}
                for i = 1, 24 do items[i] = { itemCode = "B-" .. i, description = "porcelain coffee mug" } end
                local results, summary = client:classify_batch(items, { country = "US", concurrency = 8, interval = 0.05 })
                ngx.say(summary.ok, " ", summary.failed, " ", results[24].hsCode)
            }
        }
        location = /https {
            content_by_lua_block {
                local s, err = tls_client:sections()
                ngx.say(s and #s or (err.kind .. " " .. err.message))
            }
        }
        location = /stall {
            content_by_lua_block {
                local c = make_client("{{HTTP}}", { timeout = 1, retries = false })
                local t0 = ngx.now()
                local s, err = c:sections()
                ngx.update_time()
                ngx.say(s and "ok" or err.kind, " ", string.format("%.2f", ngx.now() - t0))
            }
        }
        location = /set-phase {
            set_by_lua_block $result {
                local ok, err = pcall(client.sections, client)
                return ok and "no error" or tostring(err)
            }
            return 200 $result;
        }
        location = /init { content_by_lua_block { ngx.say(init_result) } }
    }
}
]]

local function wrong_ca(dir)
  assert(os.execute(("openssl req -x509 -newkey rsa:2048 -nodes -keyout %s/wrong.key -out %s/wrong.pem -days 1 "
    .. "-subj /CN=wrong-ca >/dev/null 2>&1"):format(dir, dir)))
  return dir .. "/wrong.pem"
end

local function start(e, workers, extra)
  local p = assert(io.popen("mktemp -d /tmp/avalara-ca.XXXXXX"))
  local dir = p:read("*l")
  p:close()
  local vars = { WORKERS = workers, HTTP = e.http_url, HTTPS = e.https_url, CA = e.ca_file, LEEWAY = 300,
    INIT_CALL = "no" }
  for k, v in pairs(extra or {}) do vars[k] = v end
  if vars.CA == "{{WRONG_CA}}" then vars.CA = wrong_ca(dir) end
  local n = nginx.start(CONF, vars)
  n.ca_dir = dir
  return n
end

local function stop(n)
  if n then
    n:stop()
    if n.ca_dir then os.execute("rm -rf " .. n.ca_dir) end
  end
end

local function grants(e)
  local c = e:counters()
  return (c.grants.connect_token or {}).client_credentials or 0
end

describe("OpenResty", function()
  local e
  setup(function() e = emu.start() end)
  teardown(function() if e then e:stop() end end)
  before_each(function() e:reset() end)

  describe("one worker", function()
    local n
    setup(function() n = start(e, 1, { INIT_CALL = "yes" }) end)
    teardown(function() stop(n) end)

    it("does not block the worker: /ping answers while a classification waits on a slow emulator", function()
      assert.equal(200, (n:get("/sections"))) -- the token, before the emulator turns slow
      e:configure { latency_ms = 1000, classification_delay = 0 }
      local out = os.tmpname()
      os.execute(("curl -s -m 30 %s/classify > %s 2>&1 &"):format(n.url, out))
      socket.sleep(0.3) -- the classification is now waiting on its first 1 s response
      local t0 = socket.gettime()
      local status, body = n:get("/ping")
      local ping = socket.gettime() - t0
      assert.equal(200, status)
      assert.equal("pong", body)
      -- a worker blocked in libcurl could not answer before the emulator's 1 s
      print(("\n/ping during a 1 s-per-response classification: %.1f ms"):format(ping * 1000))
      assert.is_true(ping < 0.25, ("/ping took %.3f s"):format(ping))
      local deadline = socket.gettime() + 15
      local result = ""
      while socket.gettime() < deadline do
        result = emu.read_file(out)
        if result ~= "" then break end
        socket.sleep(0.1)
      end
      os.remove(out)
      assert.equal("610910\n", result) -- and the slow classification completed
    end)

    it("verifies HTTPS against lua_ssl_trusted_certificate, and a wrong CA gives kind tls", function()
      local status, body = n:get("/https")
      assert.equal(200, status)
      assert.equal("21\n", body)
      local wrong = start(e, 1, { CA = "{{WRONG_CA}}" })
      status, body = wrong:get("/https")
      stop(wrong)
      assert.equal(200, status)
      assert.truthy(body:match("^tls TLS handshake with 127%.0%.0%.1:%d+ failed"), body)
    end)

    it("maps a stalled response to kind timeout within the timeout", function()
      assert.equal(200, (n:get("/sections")))
      e:fault("definitions_sections", "stall", 1, { stall_seconds = 5 })
      local _, body = n:get("/stall")
      local kind, secs = body:match("^(%S+) ([%d.]+)")
      assert.equal("timeout", kind, body)
      assert.is_true(tonumber(secs) >= 0.9 and tonumber(secs) < 2, body)
    end)

    it("runs a batch on light threads, honouring concurrency #smoke", function()
      e:configure { latency_ms = 300, classification_delay = 0 }
      local t0 = socket.gettime()
      local status, body = n:get("/batch")
      local elapsed = socket.gettime() - t0
      e:configure { latency_ms = 0 }
      assert.equal(200, status, n:log())
      assert.equal("24 0 691110\n", body)
      -- 24 creates and 24 polls at 8 at a time: 6 rounds of 300 ms (1.8 s),
      -- not 48 (14.4 s): half the serial time leaves room for a loaded machine
      assert.is_true(elapsed < 7.2, ("batch took %.2f s"):format(elapsed))
    end)

    it("says clearly that a phase without cosockets cannot make requests", function()
      local status, body = n:get("/set-phase")
      assert.equal(200, status)
      assert.truthy(body:find("no network calls in nginx's set phase", 1, true), body)
    end)

    it("uses libcurl in init_by_lua, where blocking is allowed", function()
      local _, body = n:get("/init")
      assert.equal("21\n", body)
    end)

    it("keeps secrets out of the error log", function()
      local log = n:log()
      assert.falsy(log:find("DEMO-LICENSE-KEY-0001", 1, true))
      assert.falsy(log:find(("%x"):rep(32)), "a token in the error log")
    end)
  end)

  describe("four workers", function()
    it("200 concurrent requests on a cold start make one token request; one more after the TTL", function()
      e:configure { token_ttl = 4 }
      local n = start(e, 4, { LEEWAY = 1 })
      local ok, err = pcall(function()
        local statuses = n:parallel("/sections", 200)
        assert.same({ ["200"] = 200 }, statuses)
        local first = grants(e)
        -- renewal is due 3 s (TTL 4 s, leeway 1 s) after the token was issued, at the latest as
        -- the first batch ended (a busy machine may take seconds over it)
        socket.sleep(3.2)
        statuses = n:parallel("/sections", 200)
        assert.same({ ["200"] = 200 }, statuses)
        local second = grants(e)
        print(("\ntoken requests: %d for the first 200 concurrent requests, %d after the TTL passed"):format(
          first, second - first))
        assert.equal(1, first)
        assert.equal(2, second)
      end)
      stop(n)
      assert(ok, err)
    end)
  end)

  it("runs the example configuration as documented", function()
    local f = assert(io.open("examples/openresty/nginx.conf"))
    local conf = f:read("*a"):gsub("listen 127%.0%.0%.1:8080;", "listen 127.0.0.1:{{PORT}};")
    f:close()
    -- as the comment at its top says: the repository as prefix, the AVALARA_* variables set
    local n = nginx.start(conf, {}, { prefix = emu.repo_root(),
      env = "AVALARA_ENVIRONMENT=local AVALARA_EMULATOR_URL=" .. e.http_url
        .. " AVALARA_ACCOUNT_ID=2000000001 AVALARA_LICENSE_KEY=DEMO-LICENSE-KEY-0001 AVALARA_COMPANY_ID=1001" })
    local ok, err = pcall(function()
      local out = io.popen(("curl -s -d '%s' %s/classify"):format(
        '{"itemCode":"TS-1","description":"cotton t-shirt","country":"US"}', n.url)):read("*a")
      assert.truthy(out:find('"hsCode":"610910"', 1, true), out)
      local bad = io.popen(("curl -s -w ' %%{http_code}' -d '%s' %s/classify"):format(
        '{"description":"' .. string.rep("x", 300) .. '","country":"US"}', n.url)):read("*a")
      assert.truthy(bad:find("'description' is longer than 255 characters", 1, true), bad)
      assert.truthy(bad:find(" 400$"), bad)
      local status, body = n:get("/lookup?code=610910&country=US")
      assert.equal(200, status)
      assert.truthy(body:find('"hsCode":"6109"', 1, true), body)
    end)
    stop(n)
    os.execute("rm -rf /tmp/avalara-example-*") -- the example's nginx temp folders
    assert(ok, err)
  end)

  it("receives HSCodeAssigned webhooks at the example's /avalara/webhook, checked", function()
    e:configure { classification_delay = 0 }
    local client = require("avalara").new { environment = "local", emulator_url = e.http_url,
      account_id = "2000000001", license_key = "DEMO-LICENSE-KEY-0001", company_id = 1001, timeout = 5 }
    local reg = assert(client:create_webhook_registration { connectorName = "openresty-example",
      url = "http://127.0.0.1:9/later" })
    local f = assert(io.open("examples/openresty/nginx.conf"))
    local conf = f:read("*a"):gsub("listen 127%.0%.0%.1:8080;", "listen 127.0.0.1:{{PORT}};")
    f:close()
    local n = nginx.start(conf, {}, { prefix = emu.repo_root(),
      env = "AVALARA_ENVIRONMENT=local AVALARA_EMULATOR_URL=" .. e.http_url
        .. " AVALARA_ACCOUNT_ID=2000000001 AVALARA_LICENSE_KEY=DEMO-LICENSE-KEY-0001 AVALARA_COMPANY_ID=1001"
        .. " AVALARA_WEBHOOK_SECRET=" .. client:webhook_secret(reg.registrationId) })
    local ok, err = pcall(function()
      assert(client:update_webhook_registration(reg.registrationId, { url = n.url .. "/avalara/webhook" }))
      local item = assert(client:create_items { { itemCode = "WH-1", description = "men's cotton t-shirt" } })[1]
      assert(client:initiate_hscode_classification(item.id, { "US", "DE" }))
      local deadline, body = socket.gettime() + 10
      repeat
        socket.sleep(0.1)
        body = select(2, n:get("/avalara/codes?itemCode=WH-1"))
      until body:find('"DE"', 1, true) or socket.gettime() > deadline
      assert.truthy(body:find('"US":"610910 HTS"', 1, true), body)
      assert.truthy(body:find('"DE":"610910 TARIC"', 1, true), body)
      assert.equal(1, e:counters().webhooks.delivered)
      -- a forged delivery: 401, nothing kept
      local forged = io.popen(("curl -s -w ' %%{http_code}' -H 'X-Avalara-Timestamp: %d' -H 'X-Avalara-Signature: v1=00'"
        .. " -H 'Content-Type: application/json' -d '%s' %s/avalara/webhook"):format(os.time(),
        '{"id":"x","eventType":"HSCodeAssigned","itemId":1,"itemCode":"FAKE","classifications":[]}', n.url)):read("*a")
      assert.truthy(forged:find(" 401$"), forged)
      assert.equal("{}", (select(2, n:get("/avalara/codes?itemCode=FAKE")):gsub("%s+$", "")))
    end)
    stop(n)
    os.execute("rm -rf /tmp/avalara-example-*")
    assert(ok, err)
  end)
end)
