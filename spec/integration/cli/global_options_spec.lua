-- Global options mean the same before and after the command (issue 23.1:
-- before it they were dropped without a word, so `hscode --company 9999
-- classify ...` classified under the default company and `--env sandbox`
-- before `batch` billed production), and `classify` without --item-code
-- never lets two products share a classification (issue 23.2).
local cjson = require "cjson"
local H = require "spec.support.cli"

describe("hscode global options", function()
  local w = H.world()

  local function write(path, text)
    local f = assert(io.open(path, "w"))
    f:write(text)
    f:close()
    return path
  end

  -- What a run shows, without what changes from one run to the next.
  local function shown(r)
    local function clean(s)
      return (s:gsub("%d+%.%d+ s", "T s"):gsub("%d+ms", "Tms"):gsub("in %d+ s", "in T s")
        :gsub("expires [^\n]*", "expires T"):gsub("request id [%w-]+", "request id R"):gsub("/tmp/[%w_./-]+", "PATH"))
    end
    return string.format("exit %s\n--- stdout\n%s--- stderr\n%s", r.code, clean(r.stdout), clean(r.stderr))
  end

  -- Each command with arguments that work against the emulator.
  local function commands()
    local csv = write(w.dir .. "/products.csv", "itemCode,description\nN-1,steel nail\n")
    return {
      classify = { "classify", "steel nail", "--country", "US", "--item-code", "N-1" },
      batch = { "batch", csv, "--country", "US", "--out", w.cache .. "/out.csv" },
      lookup = { "lookup", "0902", "--country", "US" },
      get = { "get", "1001-NOPE-US" },
      items = { "items", "sla" },
      token = { "token" },
      connections = { "connections" },
      disconnect = { "disconnect", "NOPE" },
      logout = { "logout" },          -- no login stored: says so
      completion = { "completion", "bash" },
    }
  end

  -- Global options with an effect a run can show; each is tried before and
  -- after every command (the ones that change nothing for a command are
  -- told apart from the ones that were dropped by the run without them).
  -- The newer ones ride along with older ones (--quiet, --no-progress,
  -- --log-format), or fail before any request (--profile), to keep the walk short.
  local OPTIONS = {
    { "--emulator-url", "ftp://127.0.0.1:1" }, -- refused before any request (a refused connection is retried)
    { "--env", "production" },
    { "--env", "nowhere" },
    { "--company", "9999", "--quiet" },
    { "--account", "2000000002" },
    { "--timeout", "0" },
    { "-v", "--no-progress" },
    { "--help" },
    { "--connection", "NOPE" },
    { "--flow", "sideways", "--log-format", "json" },
    { "--profile", "far" }, -- the config file below: connection NOPE, errors in JSON
  }

  local function with(option, args, before)
    local out = {}
    if before then for _, a in ipairs(option) do out[#out + 1] = a end end
    for _, a in ipairs(args) do out[#out + 1] = a end
    if not before then for _, a in ipairs(option) do out[#out + 1] = a end end
    return out
  end

  it("every global option has the same effect before the command as after it", function()
    local compared, effective = 0, 0
    assert(os.execute("mkdir -p -m 700 '" .. w.cache .. "/config/hscode'"))
    write(w.cache .. "/config/hscode/config", "[profile far]\nconnection = NOPE\nlog-format = json\n")
    for name, args in pairs(commands()) do
      local baseline = shown(H.run(args, w.env, w.cache))
      for _, option in ipairs(OPTIONS) do
        local after = shown(H.run(with(option, args, false), w.env, w.cache))
        local before = shown(H.run(with(option, args, true), w.env, w.cache))
        local what = "hscode " .. table.concat(option, " ") .. " " .. name .. " ..."
        assert.equal(after, before, what)
        compared = compared + 1
        if after ~= baseline then effective = effective + 1 end
        assert.falsy(before:find("traceback", 1, true), what)
      end
    end
    assert.equal(10 * #OPTIONS, compared)
    -- most pairs change what the command does: the walk compares effects, not no-ops
    assert.is_true(effective >= 40, effective .. " of " .. compared .. " had an effect")
  end)

  it("--company before classify classifies under that company", function()
    local r = H.run({ "--company", "1002", "--account", "2000000002", "--license-key", H.SBX_KEY,
      "classify", "steel nail", "--country", "US", "--json" }, w.env, w.cache)
    assert.equal(0, r.code, r.stderr)
    assert.equal(1002, cjson.decode(r.stdout).item.companyId)
  end)

  it("--env before the command is the environment used (no silent production)", function()
    local env = { AVALARA_EMULATOR_URL = w.env.AVALARA_EMULATOR_URL } -- no AVALARA_ENVIRONMENT
    local r = H.run({ "--env", "local", "token" }, env, w.cache)
    assert.equal(0, r.code, r.stderr)
    r = H.run({ "--env", "sandbox", "token" }, env, w.cache)
    assert.equal(3, r.code, r.stderr) -- sandbox needs credentials: it did not fall back to local
  end)

  describe("classify without --item-code", function()
    it("gives each product its own item code, the same one each time, and echoes the product", function()
      local a = H.run({ "classify", "ceramic coffee mug", "--country", "US", "--json" }, w.env, w.cache)
      local b = H.run({ "classify", "men's cotton t-shirt", "--country", "US", "--json" }, w.env, w.cache)
      local a2 = H.run({ "classify", "ceramic coffee mug", "--country", "US", "--json" }, w.env, w.cache)
      a, b, a2 = cjson.decode(a.stdout), cjson.decode(b.stdout), cjson.decode(a2.stdout)
      assert.matches("^hscode%-[%w]+$", a.item.itemCode)
      assert.are_not.equal(a.item.itemCode, b.item.itemCode)
      assert.equal(a.item.itemCode, a2.item.itemCode)
      local plain = H.run({ "classify", "ceramic coffee mug", "--country", "US" }, w.env, w.cache)
      assert.matches("product +ceramic coffee mug\n", plain.stdout)
    end)

    it("two runs at once each print their own product's code", function()
      w.e:configure { classification_delay = 1 }
      for _ = 1, 3 do
        local mug = H.spawn({ "classify", "ceramic coffee mug", "--country", "US" }, w.env, w.cache)
        local shirt = H.spawn({ "classify", "men's cotton t-shirt", "--country", "US" }, w.env, w.cache)
        local rm, rs = H.finish(mug, 30), H.finish(shirt, 30)
        assert.equal(0, rm.code, rm.stderr)
        assert.equal(0, rs.code, rs.stderr)
        assert.matches("product +ceramic coffee mug\n", rm.stdout)
        assert.matches("hs code +691200\n", rm.stdout)
        assert.matches("product +men's cotton t%-shirt\n", rs.stdout)
        assert.matches("hs code +610910\n", rs.stdout)
      end
    end)
  end)
end)
