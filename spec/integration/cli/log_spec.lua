-- What hscode writes on stderr (issue 23, conveniences): `--quiet` (no
-- progress, no informational lines; warnings and errors still),
-- `--no-progress`, and `--log-format json` (every stderr line one JSON object,
-- level first, in a stable key order, no secret).
local cjson = require "cjson"
local H = require "spec.support.cli"

describe("hscode stderr", function()
  local w = H.world()

  local function hscode(args, env)
    local r = H.run(args, env or w.env, w.cache)
    assert.falsy(r.stderr:find("traceback", 1, true), r.stderr)
    return r
  end

  local function lines(text)
    local out = {}
    for line in text:gmatch("[^\n]+") do out[#out + 1] = line end
    return out
  end

  -- Each stderr line decoded (every one must be JSON), and the raw lines.
  local function events(r)
    local list = {}
    for i, line in ipairs(lines(r.stderr)) do
      local ok, e = pcall(cjson.decode, line)
      assert(ok and type(e) == "table", "not a JSON object: " .. line)
      assert.matches('^{"level":"', line)
      list[i] = e
    end
    return list
  end

  local function products(n)
    local rows = { "itemCode,description" }
    for i = 1, n do rows[#rows + 1] = "P-" .. i .. ",steel nail " .. i end
    return H.write(w.dir .. "/products.csv", table.concat(rows, "\n") .. "\n")
  end

  local function batch(extra, before)
    local args = {}
    for _, a in ipairs(before or {}) do args[#args + 1] = a end
    for _, a in ipairs { "batch", products(3), "--country", "US", "--out", w.cache .. "/out.csv" } do
      args[#args + 1] = a
    end
    for _, a in ipairs(extra or {}) do args[#args + 1] = a end
    os.remove(w.cache .. "/out.csv")
    return hscode(args)
  end

  it("a batch: progress and summary by default, no progress with --no-progress, nothing with --quiet", function()
    local r = batch()
    assert.equal(0, r.code, r.stderr)
    assert.matches("hscode: 0/3 done", r.stderr)
    assert.matches("hscode: 3 items: 3 classified", r.stderr)
    for _, before in ipairs { false, true } do
      r = before and batch(nil, { "--no-progress" }) or batch { "--no-progress" }
      assert.equal(0, r.code, r.stderr)
      assert.matches("^hscode: 3 items: 3 classified[^\n]*\n$", r.stderr)
      r = before and batch(nil, { "-q" }) or batch { "--quiet" }
      assert.equal(0, r.code, r.stderr)
      assert.equal("", r.stderr)
      assert.equal(3, #H.read_csv(w.cache .. "/out.csv"))
    end
  end)

  it("--quiet still writes warnings and errors", function()
    local r = hscode { "--quiet", "token", "--account", "2000000001", "--license-key", H.KEY }
    assert.equal(0, r.code, r.stderr)
    assert.matches("^hscode: warning: %-%-license%-key on the command line", r.stderr)
    r = hscode { "get", "1001-NOPE-US", "--quiet" }
    assert.equal(1, r.code, r.stderr)
    assert.matches("^hscode: no classification 1001%-NOPE%-US\n$", r.stderr)
  end)

  it("--log-format json: a batch's progress events and summary", function()
    local r = batch { "--log-format", "json" }
    assert.equal(0, r.code, r.stderr)
    local list = events(r)
    assert.same({ level = "info", event = "progress", done = 0, total = 3, failed = 0, rate = 0, elapsed = 0 },
      list[1])
    local last = list[#list]
    assert.equal("summary", last.event)
    assert.equal("info", last.level)
    assert.equal(3, last.total)
    assert.equal(3, last.classified)
    assert.equal(0, last.failed)
    assert.equal(w.cache .. "/out.csv", last.out)
    assert.matches("^3 items: 3 classified", last.message)
    assert.matches('^{"level":"info","event":"summary","message":"3 items: [^"]*","total":3,"classified":3,',
      lines(r.stderr)[#list])
    -- --quiet: nothing; --no-progress: the summary alone
    assert.equal("", batch({ "--quiet" }, { "--log-format", "json" }).stderr)
    list = events(batch({ "--log-format=json", "--no-progress" }))
    assert.equal(1, #list)
    assert.equal("summary", list[1].event)
  end)

  it("--log-format json: a usage error, a request failure, a warning, the request log", function()
    local r = hscode { "--log-format", "json", "classify", "steel nail" }
    assert.equal(2, r.code)
    assert.equal('{"level":"error","event":"usage","message":"--country is required (two letters, such as US)",'
      .. '"exit":2,"hint":"Try \'hscode classify --help\'."}\n', r.stderr)
    -- an unknown option: before the options are parsed
    r = hscode { "classify", "--bogus", "--log-format", "json" }
    assert.equal(2, r.code)
    assert.same({ level = "error", event = "usage", message = "unknown option '--bogus'", exit = 2,
      hint = "Try 'hscode classify --help'." }, events(r)[1])
    r = hscode { "get", "1001-NOPE-US", "--log-format", "json" }
    assert.equal(1, r.code)
    local list = events(r)
    assert.equal(1, #list)
    assert.equal("error", list[1].level)
    assert.equal("failed", list[1].event)
    assert.equal(1, list[1].exit)
    assert.matches("1001%-NOPE%-US", list[1].message)
    -- an unreachable service: the hint too
    r = hscode { "token", "--log-format", "json", "--emulator-url", "http://127.0.0.1:1" }
    list = events(r)
    assert.equal(1, r.code)
    assert.matches("Is the emulator running", list[1].hint)
    -- a warning (no secret in it: H.run checks) and the request log
    r = hscode { "token", "--log-format", "json", "--account", "2000000001", "--license-key", H.KEY }
    assert.equal(0, r.code, r.stderr)
    list = events(r)
    assert.equal(1, #list)
    assert.equal("warning", list[1].level)
    assert.matches("^%-%-license%-key on the command line", list[1].message)
    r = hscode { "get", "1001-NOPE-US", "--log-format", "json", "-v" }
    list = events(r)
    assert.same({ "debug", "request", "GET", 404 }, { list[1].level, list[1].event, list[1].method, list[1].status })
    assert.matches('^{"level":"debug","event":"request","method":"GET","url":"http://', r.stderr)
    assert.equal("error", list[2].level)
    -- a bad format
    r = hscode { "token", "--log-format", "xml" }
    assert.equal(2, r.code)
    assert.matches("%-%-log%-format must be text or json %(got 'xml'%)", r.stderr)
  end)

  it("--log-format json: items classify's progress and summary", function()
    local catalog = H.write(w.dir .. "/catalog.csv", "itemCode,description\nM-1,ceramic coffee mug\n")
    local r = hscode { "items", "classify", catalog, "--countries", "US", "--log-format", "json" }
    assert.equal(0, r.code, r.stderr)
    local list = events(r)
    assert.equal("progress", list[1].event)
    assert.equal("summary", list[#list].event)
    assert.equal(1, list[#list].classified)
    assert.equal("", hscode({ "items", "classify", catalog, "--countries", "US", "-q" }).stderr)
  end)
end)
