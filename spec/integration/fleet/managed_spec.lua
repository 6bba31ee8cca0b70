-- Redis as managed services are reached (issue 26, item 3), on one real
-- redis-server started here (stopped by pid) that listens on a loopback
-- port, a mutual-TLS port (client certificates required) and a Unix
-- socket, with a least-privilege ACL user:
--
-- - the stores' contract through a `redis://` URL (the ACL user allowed only
--   the commands and keys the fleet uses, a password that needs %-escapes),
--   a `rediss://` URL with a CA, a client certificate and SNI, and a
--   `unix://` URL; the fleet (token, rate budget, cache) on the ACL user;
-- - mutual TLS refused without a client certificate or with one the server
--   does not trust (code "tls"), a misnamed server refused;
-- - URLs that are wrong raise naming the problem, never the password, and
--   the password is in no tostring, error or dump;
-- - inside nginx, on cosockets: mutual TLS (`setclientcert`), SNI, the Unix
--   socket and URLs.
local avalara = require "avalara"
local fleet = require "avalara.fleet"
local emu = require "spec.support.emulator"
local redis = require "spec.support.redis"
local contract = require "spec.support.store_contract"
local nginx = require "spec.support.nginx"
local H = require "spec.support.partner"
local B = { describe = describe, it = it, before_each = before_each }

local ADMIN, FLEET_PW = "admin-pw-4c1d9e07", "fl@et:pw/9%b2"
local FLEET_ENC = "fl%40et%3Apw%2F9%25b2"
local SECRETS = { ADMIN, FLEET_PW, FLEET_ENC }
-- the commands the fleet runs, directly or inside its scripts; nothing else
local LEAST = { "-@all", "+get", "+set", "+del", "+evalsha", "+script|load", "+incr", "+pexpire", "+time",
  "+zadd", "+zcard", "+zrange", "+zremrangebyscore", "+select" }

local CONF = [[
{{PREAMBLE}}
worker_processes 1;
events { worker_connections 64; }
http {
    {{HTTP_BASICS}}
    lua_ssl_trusted_certificate {{DIR}}/ca.pem;
    server {
        listen 127.0.0.1:{{PORT}};
        location = /store {
            content_by_lua_block {
                local a = ngx.var.arg_via
                local opts = { prefix = "mg:nginx:" }
                if a == "unix" then opts.url = "unix://fleet:{{ENC}}@{{SOCK}}?db=1"
                elseif a == "url" then opts.url = "redis://fleet:{{ENC}}@127.0.0.1:{{PLAIN}}/1"
                else
                    opts.url = "rediss://fleet:{{ENC}}@127.0.0.1:{{TLS}}/1"
                    opts.tls = { server_name = ngx.var.arg_name or "redis.example" }
                    if a ~= "nocert" then
                        opts.tls.certificate, opts.tls.key = "{{DIR}}/client.pem", "{{DIR}}/client.key"
                    end
                end
                local s = require("avalara.store").redis(opts)
                for _ = 1, 3 do -- the second and third on a pooled connection
                    local ok, err = s:set("k", { v = a })
                    if not ok then return ngx.say(err.code, " ", err.message) end
                end
                ngx.say(tostring(s), " ", s:get("k").v)
            }
        }
    }
}
]]

local dir, r, sock, tls_port
local seq = 0
local function prefix()
  seq = seq + 1
  return ("mg:%d:%d:"):format(os.time(), seq)
end

setup(function()
  dir = H.tmpdir()
  local function sh(cmd) assert(os.execute("cd " .. emu.shell_quote(dir) .. " && " .. cmd .. " >/dev/null 2>&1"), cmd) end
  -- a CA, the server's certificate (an IP and a DNS name), a client's, and a client's from another CA
  sh("openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 1 -subj /CN=spec-managed-ca")
  sh("openssl req -newkey rsa:2048 -nodes -keyout server.key -out server.csr -subj /CN=redis.example")
  sh("printf 'subjectAltName=IP:127.0.0.1,DNS:redis.example' > san.ext && openssl x509 -req -in server.csr "
    .. "-CA ca.pem -CAkey ca.key -CAcreateserial -out server.pem -days 1 -extfile san.ext")
  sh("openssl req -newkey rsa:2048 -nodes -keyout client.key -out client.csr -subj /CN=fleet-host")
  sh("openssl x509 -req -in client.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out client.pem -days 1")
  sh("openssl req -x509 -newkey rsa:2048 -nodes -keyout rogue.key -out rogue.pem -days 1 -subj /CN=rogue")
  os.execute("chmod 755 " .. emu.shell_quote(dir)) -- nginx's worker reads the client key and the socket
  os.execute("chmod 644 " .. emu.shell_quote(dir) .. "/*.key")
  sock, tls_port = dir .. "/redis.sock", emu.free_port()
  local args = { "--tls-port", tostring(tls_port), "--tls-cert-file", dir .. "/server.pem",
    "--tls-key-file", dir .. "/server.key", "--tls-ca-cert-file", dir .. "/ca.pem", "--tls-auth-clients", "yes",
    "--unixsocket", sock, "--unixsocketperm", "777",
    "--user", "fleet", "on", ">" .. FLEET_PW, "~mg:*" }
  for _, c in ipairs(LEAST) do args[#args + 1] = c end
  -- one command short: the rate budget's script may not ZADD
  for _, c in ipairs { "--user", "short", "on", ">" .. FLEET_PW, "~mg:*" } do args[#args + 1] = c end
  for _, c in ipairs(LEAST) do if c ~= "+zadd" then args[#args + 1] = c end end
  r = redis.start { password = ADMIN, args = args }
end)
teardown(function()
  if r then r:stop() end
  if dir then H.rmdir(dir) end
end)

local function mtls(extra)
  local t = { cafile = dir .. "/ca.pem", certificate = dir .. "/client.pem", key = dir .. "/client.key",
    server_name = "redis.example" }
  for k, v in pairs(extra or {}) do t[k] = v or nil end
  return t
end

contract("redis (redis:// URL, least-privilege ACL user)", function()
  return avalara.store.redis { url = "redis://fleet:" .. FLEET_ENC .. "@127.0.0.1:" .. r.port .. "/2", prefix = prefix() }
end, B)

contract("redis (rediss:// URL, mutual TLS, SNI)", function()
  return avalara.store.redis { url = "rediss://fleet:" .. FLEET_ENC .. "@127.0.0.1:" .. tls_port, tls = mtls(),
    prefix = prefix() }
end, B)

contract("redis (unix:// URL)", function()
  return avalara.store.redis { url = "unix://fleet:" .. FLEET_ENC .. "@" .. sock .. "?db=4", prefix = prefix() }
end, B)

describe("managed Redis", function()
  it("reads every part of a URL, and the parts as options; tostring shows no password #smoke", function()
    local p = prefix()
    local s = avalara.store.redis { url = "redis://fleet:" .. FLEET_ENC .. "@127.0.0.1:" .. r.port .. "/5", prefix = p }
    assert(s:set("k", { v = 1 }))
    assert.equal("avalara.store.redis(127.0.0.1:" .. r.port .. "/5, prefix " .. p .. ")", tostring(s))
    assert.matches("%d+ ", r:cli("-n", "5", "GET", p .. "k"))
    local u = avalara.store.redis { socket = sock, username = "fleet", password = FLEET_PW, db = 5, prefix = p }
    assert.same({ v = 1 }, (u:get("k")))
    assert.equal("avalara.store.redis(unix:" .. sock .. "/5, prefix " .. p .. ")", tostring(u))
    local t = avalara.store.redis { port = tls_port, username = "fleet", password = FLEET_PW, db = 5, prefix = p,
      tls = mtls() }
    assert.same({ v = 1 }, (t:get("k")))
    -- the password of the URL, the option's: neither in a dump or tostring
    H.no_secret(SECRETS, tostring(s), tostring(u), tostring(t), H.dump(s), H.dump(u), H.dump(t))
  end)

  it("fills what a URL leaves out with the defaults; rediss:// is TLS, [v6] hosts", function()
    local function shown(opts) return tostring(avalara.store.redis(opts)) end
    assert.equal("avalara.store.redis(redis.example:6379/0, prefix avalara:)", shown { url = "redis://redis.example" })
    assert.equal("avalara.store.redis(::1:7000/1 (tls), prefix p:)", shown { url = "rediss://[::1]:7000/1", prefix = "p:" })
    assert.equal("avalara.store.redis(h:6380/0 (tls), prefix avalara:)",
      shown { url = "REDISS://:" .. FLEET_ENC .. "@h:6380", tls = { server_name = "redis.example" } })
    assert.equal("avalara.store.redis(unix:/run/r.sock/0, prefix avalara:)", shown { url = "unix:///run/r.sock" })
  end)

  it("raises on a wrong URL naming the problem, never the password", function()
    local cases = {
      { "http://fleet:" .. FLEET_ENC .. "@h", "must start with redis://, rediss:// or unix://" },
      { "redis://fleet:pw%zz" .. FLEET_ENC .. "@h", "malformed %%%-escape in the password" },
      { "redis://fleet:" .. FLEET_ENC .. "@h/zero", "database must be a number" },
      { "redis://fleet:" .. FLEET_ENC .. "@:6379", "needs a host" },
      { "unix://fleet:" .. FLEET_ENC .. "@relative.sock", "needs an absolute path" },
      { "redis://fleet:" .. FLEET_ENC .. "@h:99999", "'port' must be an integer" },
    }
    for _, c in ipairs(cases) do
      local ok, err = pcall(avalara.store.redis, { url = c[1] })
      assert.is_false(ok)
      assert.matches("^avalara.store.redis: .*" .. c[2], err)
      H.no_secret(SECRETS, err)
    end
    local ok, err = pcall(avalara.store.redis, { url = "redis://:" .. FLEET_ENC .. "@h", password = "x" })
    assert.is_false(ok)
    assert.equal("avalara.store.redis: 'password' is given both as an option and in 'url'", err)
    ok, err = pcall(avalara.store.redis, { port = tls_port, tls = { certificate = dir .. "/client.pem" } })
    assert.is_false(ok)
    assert.equal("avalara.store.redis: 'tls.certificate' and 'tls.key' go together", err)
  end)

  it("refuses mutual TLS without our certificate or with an untrusted one, and a misnamed server (code tls)", function()
    local function refused(tls, pattern)
      local s = avalara.store.redis { url = "rediss://fleet:" .. FLEET_ENC .. "@127.0.0.1:" .. tls_port, tls = tls }
      local v, _, err = s:get("k")
      assert.is_nil(v)
      assert.equal("tls", err.code, err.message)
      assert.is_false(err.retryable)
      assert.matches(pattern, err.message)
      H.no_secret(SECRETS, tostring(err))
    end
    refused(mtls { certificate = false, key = false }, "TLS handshake failed")
    refused(mtls { certificate = dir .. "/rogue.pem", key = dir .. "/rogue.key" }, "TLS handshake failed")
    refused(mtls { server_name = "other.example" }, "the certificate does not name other.example")
    refused(mtls { key = dir .. "/rogue.key" }, "TLS")
  end)

  it("a least-privilege ACL user runs the whole fleet: one token, the rate budget, the cache", function()
    local e = emu.start()
    local ok, err = pcall(function()
      local before = ((e:counters().grants.connect_token or {}).client_credentials or 0)
      local redis_opts = { url = "rediss://fleet:" .. FLEET_ENC .. "@127.0.0.1:" .. tls_port .. "/3", tls = mtls(),
        prefix = prefix() }
      local warnings = {}
      local function client()
        return fleet.new { environment = "local", emulator_url = e.http_url, account_id = "2000000001",
          license_key = "DEMO-LICENSE-KEY-0001", company_id = 1001, timeout = 5, redis = redis_opts,
          rate = { requests = 1000, window = 1 }, cache = { ttl = 60 },
          on_warning = function(m) warnings[#warnings + 1] = m end }
      end
      local a, b = client(), client()
      assert(a:sections())
      assert(b:sections())
      assert.equal(1, ((e:counters().grants.connect_token or {}).client_credentials or 0) - before)
      assert.equal("up", a:fleet_status().state)
      assert.same({}, warnings)
      H.no_secret(SECRETS, tostring(a), H.dump(a.store))
      -- a user one command short (the budget's script's ZADD): every call fails, code noperm
      redis_opts.url = redis_opts.url:gsub("//fleet:", "//short:")
      local short = client()
      for _ = 1, 2 do
        local s, serr = short:sections()
        assert.is_nil(s)
        assert.equal("noperm", serr.code, serr.message)
        H.no_secret(SECRETS, tostring(serr))
      end
      assert.same({}, warnings)
    end)
    e:stop()
    assert(ok, err)
  end)

  it("inside nginx: mutual TLS with SNI, a Unix socket and URLs on cosockets", function()
    local n = nginx.start(CONF, { DIR = dir, ENC = FLEET_ENC, SOCK = sock, PLAIN = r.port, TLS = tls_port })
    local ok, err = pcall(function()
      local function got(query, want)
        local status, body = n:get("/store?" .. query)
        assert.equal(200, status)
        assert.matches(want, body)
        return body
      end
      local bodies = {
        got("via=mtls", "^avalara.store.redis%(127.0.0.1:" .. tls_port .. "/1 %(tls%), prefix mg:nginx:%) mtls\n$"),
        got("via=unix", "unix:" .. sock:gsub("%p", "%%%0") .. "/1, prefix mg:nginx:%) unix\n$"),
        got("via=url", "^avalara.store.redis%(127.0.0.1:" .. r.port .. "/1, prefix mg:nginx:%) url\n$"),
        got("via=nocert", "^tls .*TLS handshake failed"),
        got("via=mtls&name=other.example", "^tls .*TLS handshake failed"),
      }
      H.no_secret(SECRETS, table.concat(bodies), n:log())
    end)
    n:stop()
    assert(ok, err)
  end)
end)
