-- emulator/run itself: TLS with the test CA, clean stop, the parent-pid
-- watchdog, --config and several workers.
local emu = require "spec.support.emulator"
local socket = require "socket"

local function sh(cmd)
  local p = assert(io.popen(cmd .. " 2>&1"))
  local out = p:read("*a")
  p:close()
  return out
end

local function exists(path)
  local f = io.open(path, "r")
  if f then f:close() end
  return f ~= nil
end

local function wait_until(pred, seconds)
  local deadline = socket.gettime() + seconds
  while socket.gettime() < deadline do
    if pred() then return true end
    socket.sleep(0.05)
  end
  return pred()
end

-- The pid of the nginx master serving from `dir`, or nil. "[n]ginx" keeps
-- the pattern from matching the shell that runs pgrep.
local function nginx_master(dir)
  return tonumber(sh("pgrep -o -f '[n]ginx: master process.*" .. dir .. "/'"):match("%d+"))
end

local alive = emu.alive

-- Starts emulator/run directly; returns its pid and the path of its output.
-- A shell's background job starts with SIGINT ignored, which bash cannot
-- trap; env --default-signal gives it back, as in a terminal.
local function spawn(args)
  local log = os.tmpname()
  local pid = tonumber(sh("env --default-signal=INT emulator/run " .. args .. " >" .. log .. " 2>&1 </dev/null & echo $!"))
  assert(wait_until(function() return sh("cat " .. log):find("emulator: ready", 1, true) end, 15),
    "not ready: " .. sh("cat " .. log))
  return pid, log, sh("cat " .. log)
end

describe("emulator/run", function()
  describe("TLS", function()
    local e
    setup(function() e = emu.start() end)
    teardown(function() e:stop() end)

    it("serves HTTPS verified against the test CA", function()
      local res, err = e:request("GET", "/.well-known/openid-configuration", { https = true })
      assert.is_table(res, err)
      assert.equal(200, res.status)
      assert.equal(e.https_url, res.json.issuer)
    end)

    it("fails verification against another CA", function()
      local dir = os.tmpname()
      os.remove(dir)
      sh("mkdir -p " .. dir .. " && cd " .. dir .. " && openssl req -x509 -newkey ec -pkeyopt "
        .. "ec_paramgen_curve:prime256v1 -nodes -keyout k.pem -out other-ca.pem -days 1 -subj /CN=other")
      local res, err = e:request("GET", "/.well-known/openid-configuration", { https = true, cafile = dir .. "/other-ca.pem" })
      sh("rm -rf " .. dir)
      assert.is_nil(res)
      assert.matches("certificate verify failed", err)
    end)

    it("has a certificate for IP 127.0.0.1 and DNS localhost", function()
      for _, check in ipairs({ "-verify_ip 127.0.0.1", "-verify_hostname localhost" }) do
        local out = sh("openssl s_client -connect 127.0.0.1:" .. e.tls_port .. " -CAfile " .. e.ca_file
          .. " " .. check .. " -verify_return_error </dev/null")
        assert.matches("Verify return code: 0 %(ok%)", out)
      end
      local bad = sh("openssl s_client -connect 127.0.0.1:" .. e.tls_port .. " -CAfile " .. e.ca_file
        .. " -verify_hostname example.com -verify_return_error </dev/null")
      assert.not_matches("Verify return code: 0 %(ok%)", bad)
    end)

    it("prints its URLs and CA", function()
      assert.matches("^/.+/ca%.pem$", e.ca_file)
      assert.truthy(exists(e.ca_file))
      assert.equal("https://127.0.0.1:" .. e.tls_port, e.https_url)
    end)
  end)

  describe("lifecycle", function()
    it("stops nginx and removes its temporary folder on SIGTERM and SIGINT", function()
      for _, sig in ipairs({ "TERM", "INT" }) do
        local pid, log, out = spawn("--pidfile " .. os.tmpname() .. ".pid")
        local dir = out:match("emulator: ca=(%S+)/ca%.pem")
        assert.truthy(exists(dir .. "/nginx.conf"))
        assert.matches("emulator: http://127%.0%.0%.1:%d+", out)
        assert.is_number(nginx_master(dir))
        os.execute("kill -" .. sig .. " " .. pid)
        assert.truthy(wait_until(function() return not alive(pid) end, 10))
        assert.is_false(exists(dir .. "/nginx.conf"))
        assert.is_nil(nginx_master(dir))
        os.remove(log)
      end
    end)

    it("writes --pidfile with the pid to signal", function()
      local pidfile = os.tmpname()
      local pid, log = spawn("--pidfile " .. pidfile)
      local f = assert(io.open(pidfile))
      local written = f:read("*n")
      f:close()
      assert.equal(pid, written)
      os.execute("kill " .. pid)
      assert.truthy(wait_until(function() return not alive(pid) end, 10))
      os.remove(log)
    end)

    it("stops by itself when the --parent-pid process dies", function()
      local parent = tonumber(sh("sleep 60 >/dev/null 2>&1 & echo $!"))
      local pid, log, out = spawn("--parent-pid " .. parent)
      local dir = out:match("emulator: ca=(%S+)/ca%.pem")
      assert.truthy(alive(pid))
      os.execute("kill " .. parent)
      assert.truthy(wait_until(function() return not alive(pid) end, 10))
      assert.is_nil(nginx_master(dir))
      os.remove(log)
    end)

    it("takes nginx with it when it is killed with SIGKILL (no trap runs): no orphaned server", function()
      local pid, log, out = spawn("")
      local dir = out:match("emulator: ca=(%S+)/ca%.pem")
      local master = nginx_master(dir)
      assert.is_number(master)
      os.execute("kill -KILL " .. pid)
      assert.truthy(wait_until(function() return not alive(master) end, 10), "nginx outlived emulator/run")
      os.execute("rm -rf " .. dir)
      os.remove(log)
    end)

    it("fails clearly when its port is taken", function()
      local e = emu.start()
      local log = os.tmpname()
      local ok = os.execute("timeout 20 emulator/run --port " .. e.port .. " >" .. log .. " 2>&1 </dev/null")
      local out = sh("cat " .. log)
      e:stop()
      os.remove(log)
      assert.is_falsy(ok)
      assert.matches("did not start", out)
      assert.matches("Address already in use", out)
    end)

    it("refuses an unknown option", function()
      assert.matches("unknown option", sh("emulator/run --bogus"))
    end)
  end)

  describe("--config and --workers", function()
    local e, config
    setup(function()
      config = os.tmpname()
      local f = assert(io.open(config, "w"))
      f:write([[
local cfg = dofile("emulator/config.lua")
cfg.accounts = { ["3000000001"] = { license_key = "OTHER-KEY", companies = { 3001 } } }
cfg.token_ttl = 120
return cfg
]])
      f:close()
      e = emu.start({ config = config, workers = 4 })
    end)
    teardown(function()
      e:stop()
      os.remove(config)
    end)

    it("uses the given config file", function()
      local res = assert(e:request("POST", "/connect/token", { form = { grant_type = "client_credentials",
        client_id = "3000000001", client_secret = "OTHER-KEY" } }))
      assert.equal(200, res.status)
      assert.equal(120, res.json.expires_in)
      local demo = assert(e:request("POST", "/connect/token", { form = { grant_type = "client_credentials",
        client_id = "2000000001", client_secret = "DEMO-LICENSE-KEY-0001" } }))
      assert.equal(400, demo.status)
      assert.equal("invalid_client", demo.json.error)
    end)

    it("shares state across 4 workers", function()
      e:reset()
      local tok = e:token(nil, "3000000001", "OTHER-KEY")
      local auth = { authorization = "Bearer " .. tok }
      local created = assert(e:request("POST", "/api/v2/companies/3001/classifications/hs", { headers = auth,
        json = emu.classification(3001, "a", "cotton t-shirt") }))
      assert.equal(201, created.status)
      e:configure({ classification_delay = 0 })
      for _ = 1, 30 do
        local res = assert(e:request("GET", "/api/v2/companies/3001/classifications/hs/" .. created.json.id,
          { headers = auth }))
        assert.equal(200, res.status)
      end
      local c = e:counters()
      assert.equal(32, c.requests)
      assert.equal(30, c.routes.classification_get)
      local master = assert(nginx_master(e.ca_file:match("(.*)/ca%.pem")))
      assert.equal(4, tonumber(sh("pgrep -P " .. master .. " | wc -l")))
    end)
  end)
end)
