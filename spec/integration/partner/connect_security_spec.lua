-- hscode connect's loopback listener against other local clients (security
-- issue 20, finding 11): any local process, or a web page firing GETs at
-- 127.0.0.1, used to end the flow with a forged /callback (exit 3), and one
-- slow client held it. Now a request without the pending state gets 400 and
-- the flow goes on; each request is bounded in size (431) and read time
-- (408), and is read alongside the others: none holds the flow.
local emu = require "spec.support.emulator"
local socket = require "socket"
local http = require "socket.http"
local ltn12 = require "ltn12"
local H = require "spec.support.partner"
local connect = require "avalara.cli.connect"

describe("hscode connect's listener", function()
  local e, home, env
  setup(function() e = emu.start() end)
  teardown(function() if e then e:stop() end end)
  before_each(function()
    e:reset()
    home = H.tmpdir()
    env = { AVALARA_ENVIRONMENT = "local", AVALARA_EMULATOR_URL = e.http_url }
  end)
  after_each(function() H.rmdir(home) end)

  -- GET url (no redirect); returns status, body.
  local function visit(url)
    local chunks = {}
    local ok, status = http.request { url = url, sink = ltn12.sink.table(chunks), redirect = false }
    assert(ok, status)
    return status, table.concat(chunks)
  end

  -- Sends `bytes` on a new connection to the listener; returns what came back until it closed.
  local function raw(port, bytes, timeout)
    local sock = assert(socket.connect("127.0.0.1", port))
    sock:settimeout(timeout or 10)
    if bytes then assert(sock:send(bytes)) end
    local data, _, partial = sock:receive("*a")
    sock:close()
    return data or partial
  end

  -- hscode connect in the background, the browser approving: the callback URL (not visited yet).
  local function start()
    local bg = H.hscode_background({ "connect", "--wait", "60" }, env, home)
    local callback = H.browse(H.first_line(bg))
    return bg, callback, tonumber(callback:match("^http://127%.0%.0%.1:(%d+)/")), callback:match("[?&]state=([^&]+)")
  end

  it("answers 400 to a /callback without this authorization's state, and goes on to connect", function()
    local bg, callback, port, state = start()
    local base = "http://127.0.0.1:" .. port
    local flipped = state:sub(1, -2) .. (state:sub(-1) == "A" and "B" or "A")
    for _, forged in ipairs { "/callback?state=forged&code=x", "/callback?error=access_denied",
      "/callback?state=" .. flipped .. "&code=x", "/callback?state=&code=x", "/callback?code=x&state" } do
      local status, page = visit(base .. forged)
      assert.equal(400, status, forged)
      assert.matches("<h1>Not this authorization</h1>", page)
    end
    assert.equal(404, (visit(base .. "/favicon.ico")))
    assert.matches("^HTTP/1%.1 405 ", raw(port, "POST /callback?state=" .. state .. "&code=x HTTP/1.1\r\n\r\n"))
    assert.matches("^HTTP/1%.1 400 ", raw(port, "\r\n\r\n"))
    local status, page = visit(callback)
    assert.equal(200, status)
    assert.matches("<h1>Connected</h1>", page)
    local r = H.finish(bg)
    assert.equal(0, r.code, r.stderr)
    assert.matches("\nconnected +%x+\n", r.stdout)
  end)

  it("a silent client and a dribbling one do not hold the flow; the dribbler gets 408", function()
    local bg, callback, port = start()
    local silent = assert(socket.connect("127.0.0.1", port))
    local dribbler = assert(socket.connect("127.0.0.1", port))
    assert(dribbler:send("GET /callback?st"))
    local t0 = socket.gettime()
    dribbler:settimeout(connect.READ_TIME + 5)
    local answer, _, partial = dribbler:receive("*a")
    answer = answer or partial
    local took = socket.gettime() - t0
    assert.matches("^HTTP/1%.1 408 Request Timeout\r\n", answer)
    assert.is_true(took >= connect.READ_TIME - 1 and took < connect.READ_TIME + 3, ("%.1f s"):format(took))
    -- the silent one was closed with no answer; the browser still gets through, at once
    silent:settimeout(1)
    local data, err, rest = silent:receive("*a")
    assert.equal("", data or rest, err)
    silent = assert(socket.connect("127.0.0.1", port)) -- another one, open while the browser comes back
    t0 = socket.gettime()
    assert.equal(200, (visit(callback)))
    assert.is_true(socket.gettime() - t0 < 2)
    silent:close()
    dribbler:close()
    assert.equal(0, H.finish(bg).code)
  end)

  it("answers 431 to a request larger than it reads, and goes on", function()
    local bg, callback, port = start()
    local huge = "GET /callback?state=" .. ("x"):rep(connect.MAX_REQUEST) .. " HTTP/1.1\r\nHost: x\r\n\r\n"
    assert.matches("^HTTP/1%.1 431 ", raw(port, huge))
    local endless = "GET /callback HTTP/1.1\r\nX-Pad: " .. ("y"):rep(connect.MAX_REQUEST)
    assert.matches("^HTTP/1%.1 431 ", raw(port, endless))
    assert.equal(200, (visit(callback)))
    assert.equal(0, H.finish(bg).code)
  end)

  it("takes Avalara's refusal when it carries the state (exit 3, the browser told)", function()
    e:configure { deny_authorization = true }
    local bg, callback, port = start()
    assert.equal(400, (visit("http://127.0.0.1:" .. port .. "/callback?error=access_denied")))
    local status, page = visit(callback)
    assert.equal(400, status)
    assert.matches("<h1>Not connected</h1>", page)
    local r = H.finish(bg)
    assert.equal(3, r.code)
    assert.matches("oauth error access_denied", r.stderr)
  end)
end)
