-- hscode's files against another local user (issue 20, finding 2 and the
-- journal part of 12): --out in a shared folder never writes through a link
-- planted at its temporary name; a journal in a shared folder, of another
-- schema or truncated is refused with a clear message (never an internal
-- error); the temporary journal and stdin's copy live in a private folder.
-- The attacker is `nobody` (setpriv): these specs run as root.
local emu = require "spec.support.emulator"
local H = require "spec.support.cli"

local q = emu.shell_quote

local function sh(cmd)
  local ok = os.execute(cmd)
  return ok == true or ok == 0
end

local function as_nobody(cmd)
  assert(sh("setpriv --reuid=nobody --regid=nogroup --clear-groups sh -c " .. q(cmd)), cmd)
end

local root = sh("test $(id -u) -eq 0")

describe("hscode files, against another local user", function()
  local e, cache, dir, env

  setup(function() e = emu.start() end)
  teardown(function() e:stop() end)
  before_each(function()
    e:reset()
    e:configure { classification_delay = 0 }
    cache, dir = H.tmpdir(), H.tmpdir()
    env = { AVALARA_ENVIRONMENT = "local", AVALARA_EMULATOR_URL = e.http_url }
    H.write(dir .. "/in.csv", "itemCode,description,country\nA,cotton t-shirt,US\n")
  end)
  after_each(function()
    H.rmdir(cache)
    H.rmdir(dir)
  end)

  it("--out in a shared folder: a link planted at the partial name is not followed, nothing chmod'ed", function()
    if not root then pending("needs root (setpriv to nobody)") return end
    local shared, victim = dir .. "/shared", dir .. "/victim"
    assert(sh("chmod 755 " .. q(dir) .. " && mkdir -m 777 " .. q(shared)))
    H.write(victim, "precious victim data\n")
    assert(sh("chmod 600 " .. q(victim)))
    -- the names earlier versions used, and a guess at a random one
    for _, name in ipairs { ".out.csv.hscode-partial", ".out.csv.000000000000.hscode-partial" } do
      as_nobody("ln -s " .. q(victim) .. " " .. q(shared .. "/" .. name))
    end
    assert(sh("mkdir -m 700 " .. q(dir .. "/private")))
    local r = H.run({ "batch", dir .. "/in.csv", "--out", shared .. "/out.csv", "--journal",
      dir .. "/private/j" }, env, cache)
    assert.equal(0, r.code, r.stderr)
    assert.equal("precious victim data\n", H.slurp(victim))
    local p = io.popen("stat -c '%a %F' " .. q(victim) .. " " .. q(shared .. "/out.csv"))
    assert.equal("600 regular file", p:read("*l"))
    assert.equal("644 regular file", p:read("*l"))
    p:close()
    assert.equal("CLASSIFIED", H.read_csv(shared .. "/out.csv")[1].status)
    -- the attacker's links are left alone (not ours to remove), no partial of ours left
    local names = H.listing(shared)
    assert.truthy(names:find(".out.csv.hscode-partial", 1, true))
    assert.equal(2, select(2, names:gsub("hscode%-partial", "")))
  end)

  it("refuses a journal in a folder others can write (the default beside --out), naming --journal", function()
    local shared = dir .. "/shared"
    assert(sh("mkdir -m 777 " .. q(shared)))
    local r = H.run({ "batch", dir .. "/in.csv", "--out", shared .. "/out.csv" }, env, cache)
    assert.equal(2, r.code, r.stderr)
    assert.truthy(r.stderr:find("cannot use the journal " .. shared .. "/out.csv.journal: " .. shared
      .. " is writable by its group or others (mode 0777)", 1, true), r.stderr)
    assert.truthy(r.stderr:find("--journal PATH", 1, true), r.stderr)
    assert.equal(0, H.route(e, "classification_create"))
    assert.equal("", H.listing(shared))
  end)

  it("refuses a journal that is a symbolic link, and writes nothing through it", function()
    local victim = dir .. "/victim.db"
    H.write(victim, "")
    assert(sh("ln -s " .. q(victim) .. " " .. q(dir .. "/j")))
    local r = H.run({ "batch", dir .. "/in.csv", "--out", dir .. "/out.csv", "--journal", dir .. "/j" }, env, cache)
    assert.equal(2, r.code, r.stderr)
    assert.truthy(r.stderr:find(dir .. "/j is a symbolic link", 1, true), r.stderr)
    assert.equal("", H.slurp(victim))
  end)

  it("a journal of another schema, or a truncated one: a clear message, exit 2, no internal error", function()
    local other = dir .. "/other.db"
    assert(sh("sqlite3 " .. q(other) .. " \"CREATE TABLE meta (name TEXT PRIMARY KEY, n INTEGER NOT NULL); "
      .. "INSERT INTO meta VALUES ('version', 0);\""))
    local r = H.run({ "batch", dir .. "/in.csv", "--out", dir .. "/o1.csv", "--journal", other }, env, cache)
    assert.equal(2, r.code, r.stderr)
    assert.falsy(r.stderr:find("internal error", 1, true), r.stderr)
    assert.truthy(r.stderr:find("cannot use the journal " .. other .. ": it is not a journal of hscode batch "
      .. "(another schema: its table meta has no column value)", 1, true), r.stderr)

    local lines = { "itemCode,description,country" }
    for i = 1, 300 do lines[#lines + 1] = ("SKU-%d,cotton t-shirt number %d,US"):format(i, i) end
    H.write(dir .. "/big.csv", table.concat(lines, "\n") .. "\n")
    r = H.run({ "batch", dir .. "/big.csv", "--out", dir .. "/o2.csv", "--keep-journal" }, env, cache)
    assert.equal(0, r.code, r.stderr)
    assert(sh("head -c 3000 " .. q(dir .. "/o2.csv.journal") .. " > " .. q(dir .. "/trunc.journal")))
    r = H.run({ "batch", dir .. "/big.csv", "--out", dir .. "/o3.csv", "--journal", dir .. "/trunc.journal" },
      env, cache)
    assert.equal(2, r.code, r.stderr)
    assert.falsy(r.stderr:find("internal error", 1, true), r.stderr)
    assert.truthy(r.stderr:find("cannot use the journal " .. dir .. "/trunc.journal: ", 1, true), r.stderr)
  end)

  it("the temporary journal (no --out) and stdin's copy are in a private folder of $TMPDIR, removed after", function()
    local tmpdir = dir .. "/tmp"
    assert(sh("mkdir -m 1777 " .. q(tmpdir)))
    env.TMPDIR = tmpdir
    -- what the run makes in $TMPDIR, seen while it runs (the emulator is slowed down)
    e:configure { latency_ms = 300 }
    local job = io.popen("cd " .. q(H.ROOT) .. " && env TMPDIR=" .. q(tmpdir) .. " AVALARA_ENVIRONMENT=local "
      .. "AVALARA_EMULATOR_URL=" .. q(e.http_url) .. " XDG_CACHE_HOME=" .. q(cache) .. " LUA_PATH="
      .. q(H.ROOT .. "/lua/?.lua;" .. H.ROOT .. "/lua/?/init.lua;;") .. " LUA_CPATH="
      .. q(os.getenv("LUA_CPATH") or H.ROOT .. "/build/lua5.4/?.so;;") .. " "
      .. (os.getenv("SPEC_LUA") or "lua5.4") .. " bin/hscode batch - < " .. q(dir .. "/in.csv")
      .. " >/dev/null 2>&1 & for i in $(seq 100); do [ $(ls -A " .. q(tmpdir) .. " | wc -l) -ge 2 ] && break; "
      .. "sleep 0.05; done; stat -c '%a %U %n' " .. q(tmpdir) .. "/*; wait")
    local seen = job:read("*a")
    job:close()
    local folders = 0
    for mode, name in seen:gmatch("(%d+) %S+ (%S+)") do
      folders = folders + 1
      assert.equal("700", mode, seen)
      assert.truthy(name:match("/hscode%-%a+%-%x+$"), seen)
    end
    assert.equal(2, folders, seen) -- stdin's copy and the journal
    assert.equal("", H.listing(tmpdir))
  end)
end)
