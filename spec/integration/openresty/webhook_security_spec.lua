-- The webhook receiver inside a real nginx (issue 20, finding 3): copies of
-- one signed delivery POSTed at once to two workers are handled exactly once
-- (the shared dict's `add` claims the event id), a failed handler leaves the
-- retry to be handled, a receiver configured with an empty secret accepts
-- nothing and its error log names AVALARA_WEBHOOK_SECRET; and the same for
-- the example configuration (examples/openresty/nginx.conf).
local core = require "avalara.core"
local emu = require "spec.support.emulator"
local nginx = require "spec.support.nginx"

local SECRET = ("n"):rep(64)
local KEY = "subscriber-chosen-key-0123456789"

local CONF = [[
{{PREAMBLE}}
worker_processes 2;
events { worker_connections 1024; }
http {
    {{HTTP_BASICS}}
    lua_shared_dict webhooks 1m;
    lua_shared_dict counts 1m;
    init_by_lua_block {
        webhook = require "avalara.webhook"
        function on_event(event)
            local counts = ngx.shared.counts
            counts:incr("handled:" .. event.id, 1, 0)
            if event.itemCode == "FAIL" and counts:incr("fail:" .. event.id, 1, 0) == 1 then error("db down") end
            ngx.sleep(0.3) -- the other copies arrive meanwhile
        end
    }
    server {
        listen 127.0.0.1:{{PORT}};
        location = /hook {
            content_by_lua_block {
                webhook.openresty { secret = "{{SECRET}}", seen = webhook.seen.shared_dict("webhooks"),
                    on_event = on_event }
            }
        }
        location = /body-hook {
            content_by_lua_block {
                webhook.openresty { scheme = "body", secret = "{{KEY}}", algorithm = "sha512",
                    seen = webhook.seen.shared_dict("webhooks"), on_event = on_event }
            }
        }
        location = /empty-secret {
            content_by_lua_block {
                webhook.openresty { secret = "", seen = webhook.seen.shared_dict("webhooks"), on_event = on_event }
            }
        }
        location = /count {
            content_by_lua_block { ngx.print(ngx.shared.counts:get("handled:" .. ngx.var.arg_id) or 0) }
        }
    }
}
]]

local function body_of(id, item)
  return ('{"id":"%s","eventType":"HSCodeAssigned","itemId":5,"itemCode":"%s","classifications":'
    .. '[{"productCode":"610910","country":"US","systemCode":"HTS"}]}'):format(id, item or "A")
end

-- `count` copies of one delivery POSTed at once (curl --parallel); returns the
-- answers sorted ({"200", "200 duplicate", "409", ...}).
local function post(url, body, count, key)
  local dir = io.popen("mktemp -d /tmp/avalara-webhook.XXXXXX"):read("*l")
  local f = assert(io.open(dir .. "/body", "wb"))
  f:write(body)
  f:close()
  local ts = tostring(os.time())
  local cfg = assert(io.open(dir .. "/curl.cfg", "w"))
  cfg:write(('url = "%s?n=[1-%d]"\n'):format(url, count),
    ('output = "%s/out_#1"\n'):format(dir),
    ('data-binary = "@%s/body"\n'):format(dir),
    'header = "Content-Type: application/json"\n',
    ('header = "X-Avalara-Timestamp: %s"\n'):format(ts),
    ('header = "X-Avalara-Signature: v1=%s"\n'):format(core.hmac_sha256(key or SECRET, ts .. "." .. body)))
  cfg:close()
  local p = assert(io.popen(("curl -s --no-progress-meter --parallel --parallel-immediate --parallel-max %d -w '%%{http_code}\\n' "
    .. "--config %s/curl.cfg 2>/dev/null"):format(count, dir)))
  local codes = {}
  for line in p:lines() do codes[#codes + 1] = line end
  p:close()
  local answers = {}
  for i = 1, count do
    local out = emu.read_file(("%s/out_%d"):format(dir, i))
    answers[i] = (codes[i] or "?") .. (out:find('"duplicate":true', 1, true) and " duplicate" or "")
  end
  os.execute("rm -rf " .. emu.shell_quote(dir))
  table.sort(answers)
  return answers
end

local function tally(answers)
  local t = {}
  for _, a in ipairs(answers) do t[a] = (t[a] or 0) + 1 end
  return t
end

describe("webhook receiver in nginx", function()
  local n
  setup(function() n = nginx.start(CONF, { SECRET = SECRET, KEY = KEY }) end)
  teardown(function() if n then n:stop() end end)

  it("handles 8 copies of one delivery POSTed at once to an nginx of 2 workers exactly once (shared dict add)", function()
    local answers = post(n.url .. "/hook", body_of("evt-par"), 8)
    local t = tally(answers)
    assert.equal(1, t["200"], table.concat(answers, ","))
    assert.equal(7, (t["409"] or 0) + (t["200 duplicate"] or 0), table.concat(answers, ","))
    assert.truthy((t["409"] or 0) >= 1, "the copies overlapped: " .. table.concat(answers, ","))
    assert.equal("1", select(2, n:get("/count?id=evt-par")))
    -- once handled, a replay is a duplicate
    assert.same({ "200 duplicate" }, post(n.url .. "/hook", body_of("evt-par"), 1))
    assert.equal("1", select(2, n:get("/count?id=evt-par")))
  end)

  -- A body-scheme WebhookInvocation (Avalara's published E-Invoicing shape) of one message.
  local function invocation(id, message, algorithm)
    local sig = require("avalara.webhook").sign_message(KEY, message, algorithm or "sha512")
    return '{"id":"' .. id .. '","retry_count":1,"items":[{"message":' .. message .. ',"signature":{"type":"hmac",'
      .. '"algorithm":"' .. sig.algorithm .. '","value":"' .. sig.value .. '"},"event_name":"HSCodeAssigned"}]}'
  end

  it("under the body scheme too: 8 copies at once handled once, a re-wrapped replay, a tampered or "
    .. "differently signed one refused", function()
    local message = body_of("evt-body"):gsub('"itemId"', '"createdDate":"' .. os.date("!%Y-%m-%dT%H:%M:%SZ")
      .. '","itemId"')
    local answers = post(n.url .. "/body-hook", invocation("inv-1", message), 8)
    local t = tally(answers)
    assert.equal(1, t["200"], table.concat(answers, ","))
    assert.equal(7, (t["409"] or 0) + (t["200 duplicate"] or 0), table.concat(answers, ","))
    assert.same({ "200 duplicate" }, post(n.url .. "/body-hook", invocation("inv-2", message), 1))
    assert.equal("1", select(2, n:get("/count?id=evt-body")))
    local tampered = invocation("inv-3", message):gsub('"610910"', '"620520"')
    assert.same({ "401" }, post(n.url .. "/body-hook", tampered, 1))
    -- signed with sha256 where this receiver takes sha512 only
    assert.same({ "401" }, post(n.url .. "/body-hook", invocation("inv-4", message, "sha256"), 1))
    assert.equal("1", select(2, n:get("/count?id=evt-body")))
    -- the header-scheme receivers here give no scheme: nginx's error log says so, at warn level
    assert.truthy(n:log():find("[warn]", 1, true) and n:log():find("no 'scheme' given", 1, true))
  end)

  it("leaves a delivery whose handler raised to the retry, handled once then", function()
    assert.same({ "500" }, post(n.url .. "/hook", body_of("evt-fail", "FAIL"), 1))
    assert.truthy(n:log():find("on_event raised: .*db down"))
    assert.same({ "200" }, post(n.url .. "/hook", body_of("evt-fail", "FAIL"), 1))
    assert.same({ "200 duplicate" }, post(n.url .. "/hook", body_of("evt-fail", "FAIL"), 1))
    assert.equal("2", select(2, n:get("/count?id=evt-fail")))
  end)

  it("accepts nothing with an empty secret, not even what the empty key signs, and logs why", function()
    assert.same({ "500" }, post(n.url .. "/empty-secret", body_of("evt-forged"), 1, ""))
    assert.equal("0", select(2, n:get("/count?id=evt-forged")))
    assert.truthy(n:log():find("the webhook signing secret ('secret', e.g. AVALARA_WEBHOOK_SECRET) is empty", 1, true))
    -- the forgery at a receiver with its secret: a bad signature
    assert.same({ "401" }, post(n.url .. "/hook", body_of("evt-forged"), 1, ""))
  end)
end)

describe("the example's /avalara/webhook", function()
  local function example(secret)
    local f = assert(io.open("examples/openresty/nginx.conf"))
    local conf = f:read("*a"):gsub("listen 127%.0%.0%.1:8080;", "listen 127.0.0.1:{{PORT}};")
    f:close()
    return nginx.start(conf, {}, { prefix = emu.repo_root(),
      env = "AVALARA_ENVIRONMENT=local AVALARA_EMULATOR_URL=http://127.0.0.1:9 AVALARA_ACCOUNT_ID=2000000001"
        .. " AVALARA_LICENSE_KEY=DEMO-LICENSE-KEY-0001 AVALARA_COMPANY_ID=1001 AVALARA_WEBHOOK_SECRET=" .. secret })
  end

  it("refuses everything when AVALARA_WEBHOOK_SECRET is set but empty (the README's setup)", function()
    local n = example("")
    local ok, err = pcall(function()
      assert.same({ "500" }, post(n.url .. "/avalara/webhook", body_of("forged-1", "FORGED"), 1, ""))
      assert.equal("{}", (select(2, n:get("/avalara/codes?itemCode=FORGED")):gsub("%s+$", "")))
      assert.truthy(n:log():find("AVALARA_WEBHOOK_SECRET) is empty", 1, true))
    end)
    n:stop()
    os.execute("rm -rf /tmp/avalara-example-*")
    assert(ok, err)
  end)

  it("handles copies of one delivery once, with its secret", function()
    local n = example(SECRET)
    local ok, err = pcall(function()
      local t = tally(post(n.url .. "/avalara/webhook", body_of("evt-ex", "EX-1"), 4))
      assert.equal(1, t["200"])
      assert.equal(3, (t["409"] or 0) + (t["200 duplicate"] or 0))
      assert.truthy((select(2, n:get("/avalara/codes?itemCode=EX-1"))):find('"US":"610910 HTS"', 1, true))
      assert.same({ "200 duplicate" }, post(n.url .. "/avalara/webhook", body_of("evt-ex", "EX-1"), 1))
    end)
    n:stop()
    os.execute("rm -rf /tmp/avalara-example-*")
    assert(ok, err)
  end)
end)
