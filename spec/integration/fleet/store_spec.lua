-- The Redis store on a real redis-server (started here on a loopback port,
-- stopped by pid): the stores' contract (with a password, an ACL user and a
-- database), a wrong password and a server that is down as clear errors
-- without the password, a connection the server dropped replaced at once,
-- locks released only by their holder, no lost update across processes,
-- partner connections refreshed once by 4 processes sharing it, and TLS.
local avalara = require "avalara"
local emu = require "spec.support.emulator"
local redis = require "spec.support.redis"
local contract = require "spec.support.store_contract"
local B = { describe = describe, it = it, before_each = before_each }
local H = require "spec.support.partner"
local nginx = require "spec.support.nginx"
local socket = require "socket"

local PASSWORD, APP_PASSWORD = "redis-pw-7f3a9c21", "app-pw-52d18e6b"

local TLS_CONF = [[
{{PREAMBLE}}
worker_processes 1;
events { worker_connections 64; }
http {
    {{HTTP_BASICS}}
    lua_ssl_trusted_certificate {{CA}};
    server {
        listen 127.0.0.1:{{PORT}};
        location = /tls {
            content_by_lua_block {
                local s = require("avalara.store").redis { port = {{REDIS}}, password = "{{PASSWORD}}",
                    prefix = "nginx:", tls = { server_name = ngx.var.arg_name } }
                local ok, err = s:set("k", { v = "over tls, from nginx" })
                if not ok then return ngx.say(err.code, " ", err.message) end
                ngx.say(s:get("k").v)
            }
        }
    }
}
]]

local r, open -- open: a second server without a password, for the child processes
local seq = 0
local function prefix()
  seq = seq + 1
  return ("spec%d:%d:"):format(os.time(), seq)
end

setup(function()
  r = redis.start { password = PASSWORD, args = { "--user", "app", "on", ">" .. APP_PASSWORD, "~app:*", "&*", "+@all" } }
end)
teardown(function()
  if r then r:stop() end
  if open then open:stop() end
end)

contract("redis (password)", function()
  return avalara.store.redis { port = r.port, password = PASSWORD, prefix = prefix() }
end, B)

contract("redis (ACL user, database 3)", function()
  return avalara.store.redis { port = r.port, username = "app", password = APP_PASSWORD, db = 3,
    prefix = "app:" .. prefix() }
end, B)

describe("redis store", function()
  it("keeps its values under its prefix and database, as one key each with the ttl #smoke", function()
    local p = prefix()
    local s = avalara.store.redis { port = r.port, password = PASSWORD, prefix = p, db = 2 }
    assert(s:set("tok", { v = 1 }, 100))
    assert.is_nil(avalara.store.redis { port = r.port, password = PASSWORD, prefix = p }:get("tok")) -- db 0
    assert.is_nil(avalara.store.redis { port = r.port, password = PASSWORD, prefix = "other:", db = 2 }:get("tok"))
    local ttl = tonumber(r:cli("-n", "2", "PTTL", p .. "tok"):match("%-?%d+"))
    assert.is_true(ttl > 98000 and ttl <= 100000, tostring(ttl))
  end)

  it("says what is wrong with a wrong password, a wrong user and a server that is down, never the password", function()
    local wrong = "wrong-pw-0c4e8d17"
    local s = avalara.store.redis { port = r.port, password = wrong }
    local v, version, err = s:get("k")
    assert.is_nil(v)
    assert.is_nil(version)
    assert.same({ kind = "store", code = "auth", retryable = false, store = tostring(s),
      message = "redis 127.0.0.1:" .. r.port .. "/0: authentication failed (WRONGPASS invalid username-password "
      .. "pair or user is disabled.)" }, { kind = err.kind, code = err.code, retryable = err.retryable,
      store = err.store, message = err.message })
    assert.equal("avalara: store error auth: " .. err.message, tostring(err))
    local _, serr = s:set("k", { v = 1 })
    assert.equal(err.message, serr.message)
    local _, lerr = avalara.store.redis { port = r.port, username = "nobody", password = APP_PASSWORD }:lock("k")
    assert.matches("authentication failed %(WRONGPASS", lerr.message)
    local _, nerr = avalara.store.redis { port = r.port }:set("k", { v = 1 }) -- no password
    assert.matches("NOAUTH Authentication required", nerr.message)
    assert.equal("auth", nerr.code)
    local port = emu.free_port()
    local _, _, derr = avalara.store.redis { port = port, password = PASSWORD }:get("k")
    assert.equal("redis 127.0.0.1:" .. port .. "/0: cannot connect: connection refused", derr.message)
    assert.equal("unreachable", derr.code)
    assert.is_true(derr.retryable)
    err, serr, lerr, nerr, derr = tostring(err), tostring(serr), tostring(lerr), tostring(nerr), tostring(derr)
    assert.equal("avalara.store.redis(127.0.0.1:" .. r.port .. "/0, prefix avalara:)", tostring(s))
    H.no_secret({ wrong, PASSWORD, APP_PASSWORD }, err, serr, lerr, nerr, derr, tostring(s), H.dump(s))
  end)

  it("refuses wrong options at once, naming the option and not its value", function()
    for _, case in ipairs {
      { { port = "http" }, "'port' must be an integer from 1 to 65535" },
      { { db = -1 }, "'db' must be a non-negative integer" },
      { { username = "app" }, "'username' needs a 'password'" },
      { { password = 12345678 }, "'password' must be a non-empty string" },
      { { tls = "yes" }, "'tls' must be a boolean or a table" },
      { { prefix = 1 }, "'prefix' must be a string" },
      { { passwrod = "secret-1234" }, "unknown option 'passwrod'" },
    } do
      local ok, err = pcall(avalara.store.redis, case[1])
      assert.is_false(ok)
      assert.equal("avalara.store.redis: " .. case[2], err)
    end
  end)

  it("replaces at once a kept connection the server dropped (a restart)", function()
    local p = prefix()
    local s = avalara.store.redis { port = r.port, password = PASSWORD, prefix = p }
    assert(s:set("k", { v = 1 }))
    r:cli("CLIENT", "KILL", "TYPE", "normal")
    local v, _, err = s:get("k")
    assert.is_nil(err)
    assert.same({ v = 1 }, v)
    r:kill()
    local _, _, down = s:get("k")
    assert.matches("connection refused", down.message)
    r:restart()
    v, _, err = s:get("k")
    assert.is_nil(err)
    assert.is_nil(v) -- nothing persisted
    assert(s:set("k", { v = 2 }))
  end)

  it("releases a lock only while its holder holds it", function()
    local s = avalara.store.redis { port = r.port, password = PASSWORD, prefix = prefix() }
    local first = assert(s:lock("k", 0.05))
    socket.sleep(0.1) -- lapsed
    local second = assert(s:lock("k", 60))
    first() -- too late: must not free the second holder's lock
    assert.is_nil(s:lock("k"))
    second()
    assert.is_function(s:lock("k"))
  end)

  it("loses no update: 4 processes x 50 increments, under its lock, then with cas alone", function()
    for _, mode in ipairs { "increment", "cas-increment" } do
      open = open or redis.start()
      local p = prefix()
      local children = {}
      for i = 1, 4 do children[i] = H.spawn { mode, ("redis://127.0.0.1:%d/%s"):format(open.port, p), "50" } end
      H.wait(children, 60)
      for _, c in ipairs(children) do assert.equal("done\n", c.output) end
      assert.equal(200, avalara.store.redis { port = open.port, prefix = p }:get("n").n)
    end
  end)

  it("partner connections: 4 processes on an expired access token make one refresh request, and all succeed",
    function()
      open = open or redis.start()
      local e = emu.start()
      local ok, err = pcall(function()
        local where = ("redis://127.0.0.1:%d/%s"):format(open.port, prefix())
        local store = avalara.store.redis { port = open.port, prefix = where:match("/([^/]*)$") }
        local p = H.partner(e, "2012", { store = store })
        local conn = H.connect(p, { company_id = H.COMPANY })
        e:request("POST", "/_emulator/tokens/expire")
        e:configure { latency_ms = 200 } -- every process reads the dead token before any refresh is stored
        local dir = H.tmpdir()
        local go = dir .. "/go"
        local children = {}
        for i = 1, 4 do children[i] = H.spawn { "call", e.http_url, where, conn.id, go } end
        socket.sleep(0.5)
        io.open(go, "w"):close()
        H.wait(children)
        H.rmdir(dir)
        local refreshed = 0
        local rec = H.record(p, conn.id)
        for _, c in ipairs(children) do
          assert.matches("ok 21\n$", c.output)
          if c.output:find("^refreshed\nstored\n") then refreshed = refreshed + 1 end
          H.no_secret({ rec.access_token, rec.refresh_token, H.PARTNER_SECRET }, c.output)
        end
        assert.equal(1, refreshed)
        assert.equal(1, H.refreshes(e, "2012"))
      end)
      e:stop()
      assert(ok, err)
    end)

  it("speaks TLS, in plain Lua and in nginx: verified against its CA (name checked), refused otherwise", function()
    local dir = H.tmpdir()
    local function sh(cmd) assert(os.execute("cd " .. emu.shell_quote(dir) .. " && " .. cmd .. " >/dev/null 2>&1"), cmd) end
    sh("openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 1 -subj /CN=spec-redis-ca")
    sh("openssl req -newkey rsa:2048 -nodes -keyout server.key -out server.csr -subj /CN=127.0.0.1")
    sh("printf 'subjectAltName=IP:127.0.0.1,DNS:localhost' > san.ext && openssl x509 -req -in server.csr -CA ca.pem "
      .. "-CAkey ca.key -CAcreateserial -out server.pem -days 1 -extfile san.ext")
    sh("openssl req -x509 -newkey rsa:2048 -nodes -keyout other.key -out other.pem -days 1 -subj /CN=other-ca")
    local port = emu.free_port()
    local t = redis.start { password = PASSWORD, args = { "--port", "0", "--tls-port", tostring(port),
      "--tls-cert-file", dir .. "/server.pem", "--tls-key-file", dir .. "/server.key",
      "--tls-ca-cert-file", dir .. "/ca.pem", "--tls-auth-clients", "no" }, tls = { port = port, dir = dir } }
    local ok, err = pcall(function()
      local s = avalara.store.redis { port = port, password = PASSWORD, tls = { cafile = dir .. "/ca.pem" } }
      assert(s:set("k", { v = "over tls" }))
      assert.same({ v = "over tls" }, (s:get("k")))
      assert.equal("avalara.store.redis(127.0.0.1:" .. port .. "/0 (tls), prefix avalara:)", tostring(s))
      local named = avalara.store.redis { port = port, password = PASSWORD,
        tls = { cafile = dir .. "/ca.pem", server_name = "redis.example" } }
      local _, _, nerr = named:get("k")
      assert.matches("TLS handshake failed: the certificate does not name redis.example", nerr.message)
      assert.equal("tls", nerr.code)
      local other = avalara.store.redis { port = port, password = PASSWORD, tls = { cafile = dir .. "/other.pem" } }
      local _, _, cerr = other:get("k")
      assert.matches("TLS handshake failed: .*certificate", cerr.message)
      assert.equal("tls", cerr.code)
      H.no_secret({ PASSWORD }, tostring(nerr), tostring(cerr))
      -- inside nginx, on cosockets: verified against lua_ssl_trusted_certificate, by DNS name
      local n = nginx.start(TLS_CONF, { CA = dir .. "/ca.pem", REDIS = port, PASSWORD = PASSWORD })
      local ok_n, nerr_n = pcall(function()
        local status, body = n:get("/tls?name=localhost")
        assert.equal(200, status)
        assert.equal("over tls, from nginx\n", body)
        status, body = n:get("/tls?name=redis.example")
        assert.equal(200, status)
        assert.matches("^tls redis 127.0.0.1:" .. port .. "/0 %(tls%): TLS handshake failed: .*certificate", body)
        H.no_secret({ PASSWORD }, body, n:log())
      end)
      n:stop()
      assert(ok_n, nerr_n)
    end)
    t:stop()
    H.rmdir(dir)
    assert(ok, err)
  end)
end)
