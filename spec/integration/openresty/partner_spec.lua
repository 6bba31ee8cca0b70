-- examples/openresty/partner.conf in a real nginx (LuaJIT build of the core),
-- as its first lines say to run it: /connect redirects to the emulator's
-- authorize, /callback stores the connection in the shared dict,
-- /classify?connection=ID classifies on the merchant's behalf; with four
-- workers, concurrent requests on a dead access token make one refresh.
local emu = require "spec.support.emulator"
local nginx = require "spec.support.nginx"
local cjson = require "cjson"
local H = require "spec.support.partner"

local CLASSIFY = "/classify?connection=%s&description=men%%27s%%20cotton%%20t-shirt&country=US"

-- The example, on a free port, with `workers` workers.
local function start(e, workers)
  local f = assert(io.open("examples/openresty/partner.conf"))
  local conf = f:read("*a")
  f:close()
  conf = conf:gsub("listen 127%.0%.0%.1:8081;", "listen 127.0.0.1:{{PORT}};")
  conf = conf:gsub("worker_processes 2;", "worker_processes " .. workers .. ";")
  local port = emu.free_port()
  return nginx.start(conf, { PORT = port }, { prefix = emu.repo_root(),
    env = "AVALARA_ENVIRONMENT=local AVALARA_EMULATOR_URL=" .. e.http_url .. " AVALARA_CLIENT_ID=demo-partner "
      .. "AVALARA_CLIENT_SECRET=demo-partner-secret AVALARA_REDIRECT_URI=http://127.0.0.1:" .. port .. "/callback" })
end

local function stop(n)
  if n then n:stop() end
  os.execute("rm -rf /tmp/avalara-partner-*") -- the example's nginx temp folders
end

local function get_json(n, path)
  local status, body = n:get(path)
  return status, body and cjson.decode(body), body
end

-- /connect, the emulator approving, /callback: the connection.
local function connect(n, company)
  local status, headers = H.get(n.url .. "/connect" .. (company and "?company=" .. company or ""))
  assert.equal(302, status)
  local callback = H.browse(headers.location)
  assert.matches("^" .. n.url:gsub("%p", "%%%0") .. "/callback%?code=%x+&state=", callback)
  local s, body, raw = get_json(n, callback:sub(#n.url + 1))
  assert.equal(200, s, raw)
  return body.connection, callback
end

describe("OpenResty partner example", function()
  local e
  setup(function() e = emu.start() end)
  teardown(function() if e then e:stop() end end)
  before_each(function()
    e:reset()
    e:configure { classification_delay = 0 }
  end)

  it("connects a merchant, classifies on its behalf, lists, refuses a replay, disconnects", function()
    local n = start(e, 2)
    local ok, err = pcall(function()
      local conn, callback = connect(n, "1001")
      assert.matches("^%x+$", conn.id)
      assert.equal(1001, conn.company_id)
      assert.equal("connected", conn.status)
      local status, body = get_json(n, callback:sub(#n.url + 1))
      assert.equal(400, status)
      assert.equal("state_replayed", body.error.code)

      status, body = get_json(n, CLASSIFY:format(conn.id))
      assert.equal(200, status)
      assert.equal("610910", body.hsCode)
      status, body = get_json(n, "/connections")
      assert.equal(200, status)
      assert.equal(1, body.count)
      assert.equal(conn.id, body.connections[1].id)
      assert.is_nil(body.connections[1].access_token)

      local out = io.popen(("curl -s -X POST '%s/disconnect?connection=%s'"):format(n.url, conn.id)):read("*a")
      assert.same({ disconnected = conn.id }, cjson.decode(out))
      assert.equal(1, e:counters().routes.oauth_revoke)
      status, body = get_json(n, CLASSIFY:format(conn.id))
      assert.equal(404, status)
      assert.equal("connection_unknown", body.error.code)

      local log = n:log()
      assert.falsy(log:find("demo-partner-secret", 1, true))
      assert.falsy(log:find(("%x"):rep(32)), "a token in the error log")
    end)
    stop(n)
    assert(ok, err)
  end)

  it("four workers: 100 concurrent calls on a dead access token make one refresh request", function()
    local n = start(e, 4)
    local ok, err = pcall(function()
      local conn = connect(n, "1001")
      assert.equal(200, (n:get(CLASSIFY:format(conn.id))))
      assert.equal(200, assert(e:request("POST", "/_emulator/tokens/expire")).status)
      e:configure { latency_ms = 100 } -- every worker meets the dead token before a refresh is stored
      local statuses = n:parallel(CLASSIFY:format(conn.id), 100)
      assert.same({ ["200"] = 100 }, statuses)
      print(("\nrefresh requests for 100 concurrent calls over 4 workers on a dead token: %d"):format(
        H.refreshes(e, "2012")))
      assert.equal(1, H.refreshes(e, "2012"))
      assert.is_true((e:counters().routes.classification_create or 0) > 100) -- some were refused first
    end)
    stop(n)
    assert(ok, err)
  end)
end)
