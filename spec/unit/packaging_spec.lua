-- One version everywhere (core.version, avalara._VERSION, both rockspecs, the
-- top of CHANGELOG.md), a LICENSE that says what the rockspecs say, and a
-- library rock that needs only lua-cjson: the library's modules load nothing
-- else when required (SQLite, LuaSocket and the like only inside the
-- functions that use them). `make dist-check` (CI) installs the rocks.
local spec_files = require "spec.support.files"
local core = require "avalara.core"

local read = spec_files.read

local function rockspec(path)
  local env = {}
  local chunk = assert((loadstring or load)(read(path), "=" .. path, "t", env))
  if setfenv then setfenv(chunk, env) end
  chunk()
  return env
end

local lines = spec_files.lines

describe("packaging", function()
  local version = core.version
  local lib_path = ("avalara-hscode-%s-1.rockspec"):format(version)
  local cli_path = ("avalara-hscode-cli-%s-1.rockspec"):format(version)

  it("has one version: core.version, avalara._VERSION, both rockspecs, CHANGELOG.md", function()
    assert.truthy(version:match("^%d+%.%d+%.%d+$"), version)
    assert.equal(version, require("avalara")._VERSION)
    assert.equal(version .. "-1", rockspec(lib_path).version)
    assert.equal(version .. "-1", rockspec(cli_path).version)
    assert.equal(version, read("CHANGELOG.md"):match("\n## (%d+%.%d+%.%d+)"))
    -- no rockspec of another version is left beside them
    assert.same({ lib_path, cli_path }, lines("ls *.rockspec"))
  end)

  it("the public header include/avalara/core.h has the same version (AVALARA_VERSION_*)", function()
    local h = read("include/avalara/core.h")
    local function macro(name) return h:match("\n#define AVALARA_VERSION_" .. name .. " ([^\n]+)") end
    assert.equal(('"%s"'):format(version), macro("STRING"))
    assert.equal(version, ("%s.%s.%s"):format(macro("MAJOR"), macro("MINOR"), macro("PATCH")))
  end)

  it("ships an MIT LICENSE, as the rockspecs and the README say", function()
    assert.truthy(read("LICENSE"):find("^MIT License\n"))
    assert.equal("MIT", rockspec(lib_path).description.license)
    assert.equal("MIT", rockspec(cli_path).description.license)
    assert.truthy(read("README.md"):find("MIT %(%[LICENSE%]%(LICENSE%)%)"))
  end)

  it("the library rock needs only lua-cjson; the command's rock brings argparse, luv, luasocket", function()
    assert.same({ "lua >= 5.1", "lua-cjson" }, rockspec(lib_path).dependencies)
    local cli = rockspec(cli_path)
    assert.same({ "lua >= 5.1", "avalara-hscode == " .. version, "argparse", "luv", "luasocket", "luasql-sqlite3" },
      cli.dependencies)
    assert.equal(rockspec(lib_path).source.url, cli.source.url)
    assert.equal("install-lib", rockspec(lib_path).build.install_target)
    assert.equal("install-cli", cli.build.install_target)
  end)

  it("the library's modules require nothing at load time but themselves, the core, cjson and ngx", function()
    local allowed = { cjson = true, ["cjson.safe"] = true }
    local found = {}
    for _, file in ipairs(lines("find lua/avalara -name '*.lua' | sort")) do
      if not file:match("^lua/avalara/cli[/.]") then
        local n = 0
        for line in io.lines(file) do
          n = n + 1
          -- a require at the top level of the file (not indented: not inside a function)
          local name = line:match("^local [%w_, ]+= require%s*%(?%s*[\"']([^\"']+)[\"']")
            or line:match("^require%s*%(?%s*[\"']([^\"']+)[\"']")
          if name and not name:match("^avalara[%.]?") and not name:match("^ngx") and not allowed[name] then
            found[#found + 1] = ("%s:%d requires %s"):format(file, n, name)
          end
          if name and (name == "avalara.cli" or name:match("^avalara%.cli%.")) then
            found[#found + 1] = ("%s:%d requires the command's %s"):format(file, n, name)
          end
        end
      end
    end
    assert.same({}, found)
  end)

  describe("bin/hscode with no LUA_PATH or LUA_CPATH", function()
    local abi = _VERSION:match("%d+%.%d+")
    local cwd = lines("pwd")[1]
    local cmod = assert(package.searchpath("avalara.core", package.cpath)):gsub("^([^/])", cwd .. "/%1")
    local tmp
    before_each(function() tmp = os.tmpname() os.remove(tmp) end)
    after_each(function() os.execute("rm -rf '" .. tmp .. "'") end)

    -- `hscode --version` run from a copy of bin/hscode at `bin` under tmp, the
    -- modules in tmp/share/lua/<abi> and tmp/lib/lua/<abi> when `tree`
    local function run(bin, tree)
      local q = function(x) return "'" .. x .. "'" end
      local sh = "mkdir -p " .. q(tmp .. "/" .. bin:match("^(.*)/")) .. " && cp bin/hscode " .. q(tmp .. "/" .. bin)
      if tree then
        sh = sh .. " && mkdir -p " .. q(tmp .. "/share/lua") .. " " .. q(tmp .. "/lib/lua")
          .. " && ln -sfn " .. q(cwd .. "/lua") .. " " .. q(tmp .. "/share/lua/" .. abi)
          .. " && ln -sfn " .. q(cmod:gsub("/avalara/core%.so$", "")) .. " " .. q(tmp .. "/lib/lua/" .. abi)
      end
      assert(os.execute(sh))
      return table.concat(lines("cd /tmp && env -u LUA_PATH -u LUA_CPATH -u LUA_PATH_5_4 -u LUA_CPATH_5_4 "
        .. (os.getenv("SPEC_LUA") or "lua5.4") .. " " .. q(tmp .. "/" .. bin) .. " --version 2>&1; echo rc=$?"), "\n")
    end

    it("finds its modules in the tree it is installed in: PREFIX/bin, a LuaRocks rock's bin", function()
      assert.matches("^hscode %(avalara%-hscode%) " .. version:gsub("%.", "%%."), run("bin/hscode", true))
      assert.matches("^hscode ", run("lib/luarocks/rocks-" .. abi .. "/avalara-hscode-cli/" .. version
        .. "-1/bin/hscode", true))
    end)

    it("says plainly where it looked when they are not there", function()
      local out = run("bin/hscode", false)
      assert.matches("^hscode: cannot load its Lua modules: module 'avalara.cli' not found %(not on LUA_PATH, "
        .. "nor in [^\n]*/bin/%.%./share/lua/" .. abi:gsub("%.", "%%.") .. "%); is it installed whole", out)
      assert.matches("\nrc=1$", out)
      assert.falsy(out:find("traceback", 1, true) or out:find("no file", 1, true), out)
    end)
  end)

  it("make dist names the same version (src/version.h)", function()
    local make = read("Makefile")
    assert.truthy(make:find("\ndist:", 1, true))
    assert.truthy(make:find("\ndist%-check: dist"))
    assert.truthy(read(".ci/run"):find("make dist%-check"))
  end)
end)
