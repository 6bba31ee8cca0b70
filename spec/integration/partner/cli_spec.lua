-- hscode connect, connections, disconnect and --connection, as a user runs
-- them against the emulator: the authorize URL printed, the browser's
-- redirect taken once on a loopback port, the connection kept (mode 0600)
-- and used by classify, lookup, batch and token, renewed once, revoked; a
-- refusal, a stray request and no answer at all; no secret in any output.
local emu = require "spec.support.emulator"
local socket = require "socket"
local http = require "socket.http"
local ltn12 = require "ltn12"
local H = require "spec.support.partner"

describe("hscode partner commands", function()
  local e, home, env
  setup(function() e = emu.start() end)
  teardown(function() if e then e:stop() end end)
  before_each(function()
    e:reset()
    home = H.tmpdir()
    env = { AVALARA_ENVIRONMENT = "local", AVALARA_EMULATOR_URL = e.http_url }
  end)
  after_each(function() H.rmdir(home) end)

  local function store_path() return home .. "/data/avalara-hscode/connections.db" end

  -- Fails when a secret shows in any output.
  local function clean(...)
    local secrets = H.stored_secrets(store_path())
    for _, s in ipairs { H.PARTNER_SECRET, H.KEY } do secrets[#secrets + 1] = s end
    H.no_secret(secrets, ...)
  end

  local function run(...)
    local r = H.hscode({ ... }, env, home)
    clean(r.stdout, r.stderr)
    return r
  end

  -- GET on the command's listener, as the browser coming back; returns status, body.
  local function visit(url)
    local chunks = {}
    local ok, status = http.request { url = url, sink = ltn12.sink.table(chunks), redirect = false }
    assert(ok, status)
    return status, table.concat(chunks)
  end

  -- hscode connect, the browser approving; returns the command's result and its connection id.
  local function connect(...)
    local bg = H.hscode_background({ "connect", ... }, env, home)
    local url = H.first_line(bg)
    local callback = H.browse(url)
    local status, page = visit(callback)
    local r = H.finish(bg)
    clean(r.stdout, r.stderr, page)
    return r, r.stdout:match("^[^\n]*\nconnected +(%x+)\n"), url, status, page
  end

  it("connect: prints the URL, takes the redirect on its loopback port once, keeps the connection", function()
    local r, id, url, status, page = connect("--company", "1001")
    assert.equal(0, r.code, r.stderr)
    assert.matches("^" .. e.http_url:gsub("%p", "%%%0") .. "/oauth/authorize%?response_type=code&client_id=demo%-partner"
      .. "&redirect_uri=http%%3A%%2F%%2F127%.0%.0%.1%%3A%d+%%2Fcallback&state=[%w_%-]+$", url)
    assert.equal(200, status)
    assert.matches("<h1>Connected</h1>", page)
    assert.truthy(id, r.stdout)
    assert.matches("\nflow +2012\nscope +CompanyUser\ncompany +1001\n$", r.stdout)
    assert.matches("Open this URL in a browser", r.stderr)
    assert.equal("600", io.popen("stat -c %a " .. store_path()):read("*l"))

    r = run("connections")
    assert.equal(0, r.code)
    assert.matches("^ID +STATUS +FLOW +COMPANY +SCOPE +CREATED\n" .. id .. " +connected +2012 +1001 +CompanyUser +%d%d%d%d%-",
      r.stdout)
    r = run("connections", "--json")
    assert.matches('"id":"' .. id .. '"', r.stdout)
  end)

  it("--connection on classify, lookup, batch and token; one refresh when the token dies; disconnect", function()
    local _, id = connect("--company", "1001")
    local r = run("classify", "men's cotton t-shirt", "--country", "US", "--connection", id)
    assert.equal(0, r.code, r.stderr)
    assert.matches("hs code +610910\n", r.stdout)

    assert.equal(200, assert(e:request("POST", "/_emulator/tokens/expire")).status)
    r = run("lookup", "610910", "--country", "US", "--connection", id, "--verbose")
    assert.equal(0, r.code, r.stderr)
    assert.matches("    610910 +T%-shirts", r.stdout)
    assert.matches("%-> 401 .*POST " .. e.http_url:gsub("%p", "%%%0") .. "/oauth/access_token %-> 200", r.stderr)
    assert.equal(1, H.refreshes(e, "2012"))

    local csv = home .. "/items.csv"
    local f = assert(io.open(csv, "w"))
    f:write("itemCode,description\nMUG-1,porcelain coffee mug\nBK-2,\"bicycle, not motorised\"\n")
    f:close()
    r = run("batch", csv, "--country", "US", "--connection", id, "--format", "csv")
    assert.equal(0, r.code, r.stderr)
    assert.matches("MUG%-1,porcelain coffee mug,US,CLASSIFIED,691110", r.stdout)

    r = run("token", "--connection", id)
    assert.equal(0, r.code, r.stderr)
    assert.matches("type +avalara\nscope +CompanyUser\n", r.stdout)
    assert.equal(1, H.refreshes(e, "2012"))

    local secrets = H.stored_secrets(store_path())
    r = run("disconnect", id)
    assert.equal(0, r.code, r.stderr)
    assert.equal("disconnected " .. id .. "\n", r.stdout)
    assert.equal(1, e:counters().routes.oauth_revoke)
    -- the refresh token it had is refused by the server now
    local res = assert(e:request("POST", "/oauth/access_token", { form = { grant_type = "refresh_token",
      client_id = H.PARTNER, client_secret = H.PARTNER_SECRET, refresh_token = secrets.refresh_token } }))
    assert.equal("error=invalid_token&error_description=token+revoked&state=", res.body)
    r = run("classify", "green tea", "--country", "US", "--connection", id)
    assert.equal(3, r.code)
    assert.equal("hscode: no connection '" .. id .. "' (never made, or disconnected): connect it first "
      .. "(see hscode connections)\n", r.stderr)
    r = run("connections")
    assert.equal("hscode: no connections (hscode connect makes one)\n", r.stderr)
    assert.equal("[]\n", run("connections", "--json").stdout)
    r = run("disconnect", id)
    assert.equal(3, r.code)
  end)

  it("connect --flow identity, with the company from --company", function()
    local r, id = connect("--flow", "identity", "--company", "1001")
    assert.equal(0, r.code, r.stderr)
    assert.matches("\nflow +identity\nscope +hs%-code%-classification\n", r.stdout)
    r = run("classify", "porcelain coffee mug", "--country", "US", "--connection", id, "--flow", "identity")
    assert.equal(0, r.code, r.stderr)
    assert.matches("hs code +691110\n", r.stdout)
  end)

  it("a lost authorization exits 3 and says to reconnect; connect --id heals it", function()
    local _, id = connect("--company", "1001")
    local rt = H.stored_secrets(store_path()).refresh_token
    e:request("POST", "/oauth/revoke", { form = { client_id = H.PARTNER, client_secret = H.PARTNER_SECRET, token = rt } })
    local r = run("classify", "green tea", "--country", "US", "--connection", id)
    assert.equal(3, r.code)
    assert.matches("^hscode: classification failed: avalara: oauth error reauthorize: connection " .. id
      .. " is no longer authorized %(its refresh token was refused: token revoked%)", r.stderr)
    assert.matches(id .. " +reauthorize", run("connections").stdout)
    local again = connect("--id", id)
    assert.equal(0, again.code, again.stderr)
    assert.equal(0, run("classify", "green tea", "--country", "US", "--connection", id).code)
  end)

  it("connect: a refused authorization exits 3 and the browser is told", function()
    e:configure { deny_authorization = true }
    local r, _, _, status, page = connect()
    assert.equal(3, r.code)
    assert.equal(400, status)
    assert.matches("<h1>Not connected</h1>", page)
    assert.matches("hscode: the connection failed: avalara: oauth error access_denied: the customer %(or Avalara%) "
      .. "refused the authorization", r.stderr)
    assert.equal("hscode: no connections (hscode connect makes one)\n", run("connections").stderr)
  end)

  it("connect: a stray request gets 404 and the command keeps waiting; no answer ends it after --wait", function()
    local bg = H.hscode_background({ "connect" }, env, home)
    local callback = H.browse(H.first_line(bg))
    local port = callback:match("^http://127%.0%.0%.1:(%d+)/")
    assert.equal(404, (visit("http://127.0.0.1:" .. port .. "/favicon.ico")))
    assert.equal(200, (visit(callback)))
    assert.equal(0, H.finish(bg).code)

    local t0 = socket.gettime()
    local r = run("connect", "--wait", "1")
    assert.equal(1, r.code)
    assert.matches("hscode: no authorization came back within 1 s: run hscode connect again\n$", r.stderr)
    assert.is_true(socket.gettime() - t0 < 20)
  end)

  it("connect: Ctrl-C while it waits ends it cleanly (exit 130, no stack trace)", function()
    local bg = H.hscode_background({ "connect" }, env, home)
    H.first_line(bg)
    os.execute("kill -INT " .. bg.pid)
    local r = H.finish(bg)
    assert.equal(130, r.code)
    assert.equal("hscode: cancelled: no connection was made\n", r.stderr:match("[^\n]*\n$"))
    assert.falsy(r.stderr:find("traceback", 1, true))
  end)

  it("says what is missing, before any request", function()
    local r = H.hscode({ "connections" }, {}, home)
    assert.equal(3, r.code)
    assert.equal("hscode: no partner client id: set AVALARA_CLIENT_ID (or use --client-id)\n", r.stderr)
    r = run("connect", "--flow", "implicit")
    assert.equal(2, r.code)
    assert.matches("^hscode: unknown flow 'implicit' %(2012 or identity%)", r.stderr)
    r = run("connect", "--port", "http")
    assert.equal(2, r.code)
    r = run("disconnect")
    assert.equal(2, r.code)
    assert.equal(0, e:counters().requests)
    r = run("--help")
    assert.matches("\n  connect +connect an Avalara account", r.stdout)
    assert.matches("\n  %-%-connection ID +call on behalf of this connection", r.stdout)
    assert.matches("^Usage: hscode connect", run("connect", "--help").stdout)
  end)
end)
