-- hscode login / hscode logout against the emulator: the code and the URLs
-- printed, the approval in the "browser" (POST /device), the token kept in
-- the token store and used when no license key is given; a denial, an
-- expiry, slow_down, logout revoking, and usage errors.
local H = require "spec.support.cli"

local ID = "2000000001"

describe("hscode login", function()
  local w = H.world()

  before_each(function() w.e:configure { device_interval = 0 } end)

  -- Starts `hscode login`, waits for the code it prints; returns the job and the code.
  local function start(extra_args)
    local args = { "login" }
    for _, a in ipairs(extra_args or {}) do args[#args + 1] = a end
    local job = H.spawn(args, w.env, w.cache)
    local code
    H.until_true(function()
      code = (H.slurp(job.dir .. "/out") or ""):match("code%s+(%u%u%u%u%-%u%u%u%u)")
      return code ~= nil or H.slurp(job.dir .. "/rc") ~= nil
    end)
    return job, code
  end

  local function answer(code, action)
    local res = assert(w.e:request("POST", "/device", { form = { user_code = code, action = action,
      account_id = ID, license_key = H.KEY } }))
    assert.equal(200, res.status)
  end

  local function api_status(token)
    return assert(w.e:request("GET", "/api/v2/definitions/crossborder/sections",
      { headers = { Authorization = "Bearer " .. token } })).status
  end

  it("prints the code and the URLs, waits, keeps the token, and commands use it #smoke", function()
    local job, code = start()
    assert.truthy(code)
    answer(code, "approve")
    local r = H.finish(job)
    assert.equal(0, r.code, r.stderr)
    local url = w.e.http_url .. "/device"
    assert.truthy(r.stdout:find("url          " .. url .. "\n", 1, true), r.stdout)
    assert.truthy(r.stdout:find("complete url " .. url .. "?user_code=" .. code .. "\n", 1, true), r.stdout)
    assert.matches("signed in    local\n", r.stdout)
    assert.matches("scope        hs%-code%-classification\n", r.stdout)
    assert.matches("waiting for the approval %(the code expires in [45]m%d%ds%)", r.stderr)
    assert.not_matches("\r", r.stderr) -- not a terminal: plain lines, no spinner
    local tokens = H.cached_tokens(w.cache)
    assert.equal(1, #tokens)
    -- the login is used (no license key given, no client_credentials grant)
    local t = H.run({ "token", "--json" }, w.env, w.cache)
    assert.equal(0, t.code, t.stderr)
    assert.matches('"scope":"hs%-code%-classification"', t.stdout)
    assert.not_matches('"account_id"', t.stdout)
    local g = H.run({ "get", "1001-NO-SUCH-ITEM-US", "--company", "1001" }, w.env, w.cache)
    assert.equal(1, g.code) -- authenticated: the API answered 404, not 401
    assert.matches("no classification 1001%-NO%-SUCH%-ITEM%-US", g.stderr)
    assert.equal(0, H.grants(w.e))
  end)

  it("fails with exit 3 when the user denies", function()
    local job, code = start()
    answer(code, "deny")
    local r = H.finish(job)
    assert.equal(3, r.code)
    assert.matches("hscode: not signed in: .*access_denied", r.stderr)
    assert.equal(0, #H.cached_tokens(w.cache))
  end)

  it("fails with exit 3 when the code expires, and after --wait with exit 1", function()
    w.e:configure { device_code_ttl = 0 }
    local job = start()
    local r = H.finish(job)
    assert.equal(3, r.code)
    assert.matches("hscode: not signed in: .*expired_token", r.stderr)
    w.e:configure { device_code_ttl = 300 }
    job = start({ "--wait", "0.5" })
    r = H.finish(job)
    assert.equal(1, r.code)
    assert.matches("was not approved within 0.5 s: run hscode login again", r.stderr)
  end)

  it("keeps waiting through slow_down (5 s more between polls)", function()
    w.e:configure { device_slow_down = 1 }
    local job, code = start()
    answer(code, "approve")
    H.until_true(function() return H.route(w.e, "connect_token") >= 1 end)
    local r = H.finish(job)
    assert.equal(0, r.code, r.stderr)
    assert.equal(2, H.route(w.e, "connect_token"))
  end)

  it("logout revokes the token and forgets it; without a login it says so", function()
    local job, code = start()
    answer(code, "approve")
    assert.equal(0, H.finish(job).code)
    local token = H.cached_tokens(w.cache)[1]
    assert.equal(200, api_status(token))
    local r = H.run({ "logout" }, w.env, w.cache)
    assert.equal(0, r.code, r.stderr)
    assert.equal("signed out   local\n", r.stdout)
    assert.equal(401, api_status(token))
    assert.equal(0, #H.cached_tokens(w.cache))
    assert.equal(1, H.route(w.e, "connect_revocation"))
    r = H.run({ "logout" }, w.env, w.cache)
    assert.equal(0, r.code)
    assert.matches("not signed in %(local%): nothing to do", r.stderr)
    -- back to the demo account of --env local
    local t = H.run({ "token", "--json" }, w.env, w.cache)
    assert.matches('"account_id":"2000000001"', t.stdout)
  end)

  it("ends on Ctrl-C with 130, not signed in", function()
    local job = start()
    H.signal(job, "INT")
    local r = H.finish(job)
    assert.equal(130, r.code)
    assert.matches("cancelled: not signed in", r.stderr)
    assert.equal(0, #H.cached_tokens(w.cache))
  end)

  it("shows a spinner and the time left on a terminal (in-process)", function()
    local memory = require("avalara.store").memory()
    local out, err = { text = "" }, { text = "" }
    function out:write(...)
      self.text = self.text .. table.concat({ ... })
      local code = self.text:match("code%s+(%u%u%u%u%-%u%u%u%u)")
      if code and not self.approved then
        self.approved = true
        answer(code, "approve") -- the person approves while hscode waits
      end
      return self
    end
    function err:write(...) self.text = self.text .. table.concat({ ... }) return self end
    out.flush, err.flush = function() end, function() end
    local sys = { stdout = out, stderr = err, isatty = function() return true end,
      getenv = function(name) return w.env[name] end, store = function() return memory end }
    assert.equal(0, require("avalara.cli").run({ "login" }, sys), err.text)
    assert.matches("\r[|/\\-] waiting for the approval of %u%u%u%u%-%u%u%u%u %([45]m%d%ds left%)\27%[K", err.text)
    assert.not_matches("the code expires in", err.text) -- no plain line on a terminal
    assert.matches("signed in    local\n", out.text)
    assert.truthy(memory:get("hscode-login " .. w.e.http_url .. "/connect/token"))
  end)

  it("refuses arguments and a bad --wait before any request", function()
    local r = H.run({ "login", "extra" }, w.env, w.cache)
    assert.equal(2, r.code)
    assert.matches("login takes no arguments", r.stderr)
    r = H.run({ "login", "--wait", "soon" }, w.env, w.cache)
    assert.equal(2, r.code)
    r = H.run({ "logout", "extra" }, w.env, w.cache)
    assert.equal(2, r.code)
    assert.equal(0, H.route(w.e, "connect_deviceauthorization"))
  end)
end)
