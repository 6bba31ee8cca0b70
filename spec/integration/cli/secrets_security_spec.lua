-- Security review, issue 20: secrets on argv. `--license-key` and
-- `--client-secret` on the command line are visible to every local user in
-- `ps`: each has a file twin (`--license-key-file FILE`, `-` for stdin) and
-- a warning when given on argv. The real bin/hscode against the emulator;
-- H.run also fails whenever a license key shows in what hscode printed.
local emu = require "spec.support.emulator"
local H = require "spec.support.cli"
local P = require "spec.support.partner"

local ARGV_WARNING = "hscode: warning: %-%-license%-key on the command line is visible to other local users %(ps%)"

describe("secrets off the command line (issue 20)", function()
  local e, cache, dir, env

  local w = H.world({ AVALARA_ACCOUNT_ID = "2000000001", AVALARA_COMPANY_ID = "1001" })
  before_each(function() e, cache, dir, env = w.e, w.cache, w.dir, w.env end)

  -- A file holding `text`, with `mode` (default 600).
  local function secret_file(name, text, mode)
    local path = H.write(dir .. "/" .. name, text)
    assert(os.execute("chmod " .. (mode or "600") .. " " .. path))
    return path
  end

  local function hscode(args, opts)
    local r = H.run(args, env, cache, opts)
    assert.falsy(r.stderr:find("traceback", 1, true), r.stderr)
    return r
  end

  it("--license-key-file FILE: the key from the file (one line end dropped), no warning", function()
    local r = hscode { "token", "--license-key-file", secret_file("key", H.KEY .. "\n") }
    assert.equal(0, r.code, r.stderr)
    assert.matches("type +Bearer", r.stdout)
    assert.equal("", r.stderr)
    r = hscode { "token", "--license-key-file", secret_file("crlf", H.KEY .. "\r\n") }
    assert.equal(0, r.code, r.stderr)
    -- the file's key is the one used: a wrong one is refused by the service
    r = hscode { "token", "--license-key-file", secret_file("wrong", "WRONG-KEY-1234") }
    assert.equal(3, r.code, r.stderr)
    assert.matches("invalid_client", r.stderr)
    assert.falsy(r.stderr:find("WRONG-KEY-1234", 1, true))
  end)

  it("--license-key-file -: the key from stdin, no warning", function()
    local stdin = secret_file("stdin", H.KEY .. "\n")
    local r = hscode({ "classify", "men's cotton t-shirt", "--country", "US", "--license-key-file", "-" },
      { stdin = stdin })
    assert.equal(0, r.code, r.stderr)
    assert.matches("hs code +610910", r.stdout)
    assert.equal("", r.stderr)
  end)

  it("--license-key KEY on argv: works, with a warning that never holds the key", function()
    local r = hscode { "token", "--license-key", H.KEY }
    assert.equal(0, r.code, r.stderr)
    assert.matches("^" .. ARGV_WARNING .. " and may stay in your shell history; use %-%-license%-key%-file FILE "
      .. "%(%- for stdin%) or AVALARA_LICENSE_KEY\n$", r.stderr)
    assert.falsy(r.stderr:find(H.KEY, 1, true))
    r = hscode { "token", "--license-key=" .. H.KEY }
    assert.equal(0, r.code, r.stderr)
    assert.matches(ARGV_WARNING, r.stderr)
    -- the variable: no warning
    env.AVALARA_LICENSE_KEY = H.KEY
    r = hscode { "token" }
    assert.equal(0, r.code, r.stderr)
    assert.equal("", r.stderr)
  end)

  it("batch's resume line does not repeat a key given on argv", function()
    e:configure { quotas = { ["2000000002"] = 1 } }
    env.AVALARA_ACCOUNT_ID, env.AVALARA_COMPANY_ID = "2000000002", "1002"
    local input = H.write(dir .. "/in.csv", "itemCode,description,country\nA,cotton t-shirt,US\nB,tea,US\n")
    local r = hscode { "batch", input, "--out", dir .. "/out.csv", "--concurrency", "1", "--license-key", H.SBX_KEY }
    assert.equal(1, r.code, r.stderr)
    assert.matches("run the same command again when the quota allows:\n  hscode batch .* %-%-license%-key KEY", r.stderr)
    assert.falsy(r.stderr:find(H.SBX_KEY, 1, true))
  end)

  it("a key file others can read is used with a warning; bad files and mixes are refused", function()
    local r = hscode { "token", "--license-key-file", secret_file("open", H.KEY .. "\n", "644") }
    assert.equal(0, r.code, r.stderr)
    assert.matches("^hscode: warning: %-%-license%-key%-file .*/open can be read by other users %(mode 644%); "
      .. "chmod 600 it\n$", r.stderr)
    e:reset()
    -- exit 3 naming the file, never its content; nothing sent
    local function refused(code, pattern, args, opts)
      r = hscode(args, opts)
      assert.equal(code, r.code, r.stderr)
      assert.matches(pattern, r.stderr)
      assert.equal(0, e:counters().requests)
    end
    refused(3, "^hscode: cannot read %-%-license%-key%-file .*/nope: No such file or directory\n$",
      { "token", "--license-key-file", dir .. "/nope" })
    refused(3, "^hscode: cannot read %-%-license%-key%-file .*: it is a directory\n$",
      { "token", "--license-key-file", dir })
    refused(3, "^hscode: %-%-license%-key%-file .*/empty is empty\n$",
      { "token", "--license-key-file", secret_file("empty", "\n") })
    refused(3, "^hscode: %-%-license%-key%-file .*/env must hold the secret alone, on one line",
      { "token", "--license-key-file", secret_file("env", "AVALARA_LICENSE_KEY=" .. H.KEY .. "\nX=1\n") })
    refused(3, "^hscode: %-%-license%-key%-file stdin is empty\n$", { "token", "--license-key-file", "-" })
    refused(2, "^hscode: %-%-license%-key and %-%-license%-key%-file: give one of them\n",
      { "token", "--license-key", "x", "--license-key-file", dir .. "/key" })
    refused(2, "stdin cannot hold both the secret and the input",
      { "batch", "-", "--license-key-file", "-" }, { stdin = dir .. "/key" })
    refused(2, "stdin holds one of them only",
      { "token", "--license-key-file", "-", "--client-secret-file", "-" }, { stdin = dir .. "/key" })
  end)

  it("documents the file options in hscode --help", function()
    local r = hscode { "--help" }
    assert.matches("%-%-license%-key%-file FILE +read the license key from FILE %(%- for stdin%)", r.stdout)
    assert.matches("%-%-client%-secret%-file FILE +read the partner's secret from FILE", r.stdout)
  end)
end)

describe("--client-secret-file (issue 20)", function()
  local e, home, env
  setup(function() e = emu.start() end)
  teardown(function() e:stop() end)
  before_each(function()
    e:reset()
    home = P.tmpdir()
    env = { AVALARA_ENVIRONMENT = "local", AVALARA_EMULATOR_URL = e.http_url }
  end)
  after_each(function() P.rmdir(home) end)

  -- hscode connect with `args`, the browser approving; returns the command's result.
  local function connect(...)
    local bg = P.hscode_background({ "connect", "--company", "1001", "--client-id", P.PARTNER, ... }, env, home)
    local callback = P.browse(P.first_line(bg))
    P.get(callback)
    local r = P.finish(bg)
    P.no_secret({ P.PARTNER_SECRET }, r.stdout, r.stderr)
    return r
  end

  local function file(name, text)
    local path = home .. "/" .. name
    H.write(path, text)
    assert(os.execute("chmod 600 " .. path))
    return path
  end

  it("the partner's secret from a file: connected, no warning; a wrong one is refused by the service", function()
    local r = connect("--client-secret-file", file("secret", P.PARTNER_SECRET .. "\n"))
    assert.equal(0, r.code, r.stderr)
    assert.matches("\nconnected +%x+\n", "\n" .. r.stdout)
    assert.falsy(r.stderr:find("warning", 1, true), r.stderr)
    r = connect("--client-secret-file", file("wrong", "not-the-secret\n"))
    assert.not_equal(0, r.code)
    assert.matches("the connection failed %(invalid_client_secret%): avalara: oauth error %(status 400%) invalid_request", r.stderr)
  end)

  it("--client-secret on argv: a warning without the secret", function()
    local r = P.hscode({ "connections", "--client-id", P.PARTNER, "--client-secret", P.PARTNER_SECRET }, env, home)
    assert.equal(0, r.code, r.stderr)
    assert.matches("^hscode: warning: %-%-client%-secret on the command line is visible to other local users %(ps%)"
      .. ".* use %-%-client%-secret%-file FILE %(%- for stdin%) or AVALARA_CLIENT_SECRET\n", r.stderr)
    P.no_secret({ P.PARTNER_SECRET }, r.stdout, r.stderr)
  end)
end)
