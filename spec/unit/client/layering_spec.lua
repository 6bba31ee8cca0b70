-- The Lua layer's layers (issue 22; docs/design.md), the twin of
-- spec/unit/core/layering_spec.lua: read from lua/avalara, every `require`
-- (top level or inside a function) points to the module's own layer or
-- lower, no cycle, no module over 400 lines without a reason at its top, no
-- module reads another's private `_fields`. The rules and the parser are in
-- spec/support/layering.lua; the first block proves they find what they must
-- on a tiny fake tree, so a green run on lua/avalara means something.
local L = require "spec.support.layering"
local emu = require "spec.support.emulator"

local function tree(files)
  local t = {}
  for name, source in pairs(files) do t[name] = { path = name, source = source } end
  return t
end

local function none(list, what)
  assert(#list == 0, #list .. " " .. what .. ":\n  " .. table.concat(list, "\n  "))
end

local function has(list, pattern)
  for _, line in ipairs(list) do if line:find(pattern) then return true end end
  error("no line matching '" .. pattern .. "' in:\n  " .. table.concat(list, "\n  "), 2)
end

describe("the layering check itself (a fake tree)", function()
  it("reads every form of require, and none in comments or strings", function()
    local f = L.scan([==[
local a = require "avalara.a"
local b = require("avalara.b")
local c = require 'avalara.c'
-- require "avalara.in_comment"
--[[ require("avalara.in_long_comment") ]]
local s = "require 'avalara.in_string'" .. [[require "avalara.in_long_string"]]
local function lazy() return require("avalara.lazy").x end
local ok, opt = pcall(require, "avalara.optional")
local cmd = require("avalara.cli." .. name)
local t = { require = 1 }
t.require("avalara.not_a_require")
local sneaky = package.loaded["avalara.client"]
]==])
    local got = {}
    for _, r in ipairs(f.requires) do
      got[#got + 1] = r.name .. (r.prefix and "*" or "") .. (r.optional and "?" or "") .. "@" .. r.line
    end
    assert.same({ "avalara.a@1", "avalara.b@2", "avalara.c@3", "avalara.lazy@7", "avalara.optional?@8",
      "avalara.cli.*@9", "avalara.client@12" }, got)
  end)

  it("tells private-field writes from reads", function()
    local f = L.scan([[
local C = {}
function C._own() end
function C.sub:_method() end
local o = { _mine = 1, x = 2 }
o._set = 3
local v = other._theirs + other:_call() + other["_indexed"]
if o._set == 1 then end
local meta = { __index = C }
local ver = M._VERSION
C._one, C.sub._two, C["_three"] = 1, 2, 3
local t = { o._in_list, other = 1 }
f(o._arg, z)
]])
    assert.same({ _own = true, _method = true, _mine = true, _set = true, _one = true, _two = true, _three = true },
      f.writes)
    local reads = {}
    for _, r in ipairs(f.reads) do reads[#reads + 1] = r.field end
    assert.same({ "_theirs", "_call", "_indexed", "_set", "_in_list", "_arg" }, reads)
  end)

  it("recognises a one-line delegation", function()
    assert.equal("avalara.hs.item", L.scan('--- @module avalara.item: moved to avalara.hs.item\n'
      .. 'return require "avalara.hs.item"\n').delegates)
    assert.equal("avalara.x", L.scan('return require("avalara.x");').delegates)
    assert.is_nil(L.scan('local x = require "avalara.x"\nreturn x').delegates)
  end)

  it("places modules by the layer table", function()
    assert.equal(5, L.layer_of("avalara.cli"))
    assert.equal(5, L.layer_of("avalara.cli.items"))
    assert.equal(4, L.layer_of("avalara"))
    assert.equal(3, L.layer_of("avalara.client"))
    assert.equal(3, L.layer_of("avalara.partner.connection"))
    assert.equal(2, L.layer_of("avalara.hs"))
    assert.equal(2, L.layer_of("avalara.items.catalog"))
    assert.equal(1, L.layer_of("avalara.token.cached"))
    assert.equal(1, L.layer_of("avalara.store"))
    assert.equal(0, L.layer_of("avalara.core"))
    assert.is_nil(L.layer_of("avalara.token")) -- only avalara.token.*
    assert.is_nil(L.layer_of("avalara.clients"))
    assert.is_nil(L.layer_of("avalara.item"))
  end)

  it("reports a cycle, an upward edge, a private read, an unknown and a missing module, a size", function()
    local big = string.rep("local x = 1\n", 401)
    local report = L.check(tree {
      ["avalara"] = 'local client = require "avalara.client"\nreturn {}\n',
      ["avalara.client"] = 'local hs = require "avalara.hs"\nlocal C = { _secret = 1 }\nreturn C\n',
      -- a service requiring the client: upward (2 -> 3) and, lazily, a cycle
      ["avalara.hs"] = 'local M = {}\nfunction M.f(c)\n  return require("avalara.client")._secret\nend\nreturn M\n',
      ["avalara.hs.gone"] = 'return require("avalara.hs.nowhere")\n',
      ["avalara.paths"] = big,
      ["avalara.retry"] = 'local argparse = require "argparse"\nreturn {}\n',
      ["avalara.cli"] = 'local argparse = require "argparse"\nreturn require("avalara.cli." .. "x")\n',
      ["avalara.cli.x"] = 'return require("avalara.cli").y\n',
      ["avalara.item"] = 'return require "avalara.hs"\n',
      ["avalara.clock"] = "-- A clock.\n-- Why this size: a test.\nlocal t = os.time()\n" .. big,
      ["avalara.misc"] = 'local now = os.time\nlocal d = os.time { year = 2026, month = 1, day = 1 }\nreturn {}\n',
      ["avalara.store.x"] = 'local s = require "avalara.clock"\nif ngx then ngx.sleep(0.001) end\nreturn {}\n',
    })
    has(report.cycles, "^avalara%.client %-> avalara%.hs %-> avalara%.client: .*avalara%.hs %-> avalara%.client %(avalara%.hs:3%)")
    has(report.cycles, "^avalara%.cli %-> avalara%.cli%.x %-> avalara%.cli")
    assert.equal(2, #report.cycles)
    has(report.upward, "^avalara%.hs:3 %(layer 2%) requires avalara%.client %(layer 3%)")
    assert.equal(1, #report.upward)
    has(report.private, "^avalara%.hs:3 reads _secret, private to avalara%.client$")
    assert.equal(1, #report.private)
    has(report.unknown, "^avalara%.misc ")
    assert.equal(1, #report.unknown) -- avalara.item delegates to a known layer; avalara.hs.gone is in hs.*
    has(report.missing, "^avalara%.hs%.gone:1 requires avalara%.hs%.nowhere, which no file provides")
    has(report.size, "^avalara%.paths: 401 lines")
    assert.equal(1, #report.size) -- avalara.clock says why
    has(report.delegation, "^avalara%.item: delegates to avalara%.hs without a '%-%-%- @module' comment")
    has(report.cli_deps, "^avalara%.retry:1 requires argparse")
    assert.equal(1, #report.cli_deps) -- the CLI may
    has(report.clock, "^avalara%.misc:1 reads os%.time")
    has(report.clock, "^avalara%.store%.x:2 reads ngx%.sleep") -- sleeps go through avalara.clock too
    assert.equal(2, #report.clock) -- os.time(t) converts a date; avalara.clock may read the time
  end)

  it("reports nothing on a tree that follows the rules", function()
    local report = L.check(tree {
      ["avalara"] = 'local client = require "avalara.client"\nreturn { new = client.new }\n',
      ["avalara.client"] = 'local hs = require "avalara.hs"\nlocal C = { _token = 1 }\n'
        .. 'function C:token() return self._token end\nreturn C\n',
      ["avalara.hs"] = 'local clock = require "avalara.clock"\nlocal M = { field = "hs" }\n'
        .. 'function M.new(client) return { c = client, t = client:token() } end\nreturn M\n',
      ["avalara.clock"] = 'local core = require "avalara.core"\nreturn {}\n',
      ["avalara.item"] = '--- @module avalara.item: moved to avalara.hs\nreturn require "avalara.hs"\n',
      ["avalara.cli"] = 'local a = require "avalara"\nlocal argparse = require "argparse"\nreturn {}\n',
    })
    assert.equal("", L.format(report))
  end)
end)

describe("lua/avalara layering", function()
  local report, graph, modules

  setup(function()
    local t = L.read_tree(emu.repo_root() .. "/lua")
    modules = 0
    for _ in pairs(t) do modules = modules + 1 end
    report, graph = L.check(t)
  end)

  it("reads the whole tree", function()
    assert.truthy(modules >= 30, modules .. " modules")
    assert.truthy(graph["avalara"]["avalara.core"], "avalara requires avalara.core")
  end)

  it("requires only modules that exist", function()
    none(report.missing, "requires of a missing module")
  end)

  it("keeps argparse and luv out of the library (the CLI's rock has them)", function()
    none(report.cli_deps, "library requires of CLI dependencies")
  end)

  it("marks every delegation file with a '--- @module' comment", function()
    none(report.delegation, "delegations without @module")
  end)

  it("has no require cycle, not even through a lazy require", function()
    none(report.cycles, "cycles")
  end)

  it("requires only its own layer or lower", function()
    none(report.upward, "upward requires")
  end)

  it("places every module in a layer of the table", function()
    none(report.unknown, "modules in no layer")
  end)

  it("reads no other module's private fields", function()
    none(report.private, "private-field reads")
  end)

  it("reads the time and sleeps only through avalara.clock", function()
    none(report.clock, "clock reads outside avalara.clock")
  end)

  it("has no module over 400 lines without a '-- Why this size:' note at its top", function()
    none(report.size, "oversized modules")
  end)
end)
