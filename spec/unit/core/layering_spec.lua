-- The C core's layers (docs/core.md, "Layout"): read from the sources, the
-- include graph has no circle, and the protocol layer stays free of Lua and
-- libcurl (it is what the fuzzers build alone).
local emu = require "spec.support.emulator"

local read = emu.read_file

-- src/<name>.c and .h files, by module name ("token" for token.c + token.h).
local function modules()
  local list, p = {}, assert(io.popen("ls " .. emu.repo_root() .. "/src"))
  for file in p:lines() do
    local name = file:match("^(.+)%.[ch]$")
    if name then
      list[name] = list[name] or {}
      list[name][#list[name] + 1] = "src/" .. file
    end
  end
  p:close()
  return list
end

-- module -> set of modules whose header it includes (itself excluded)
local function graph()
  local g = {}
  for name, files in pairs(modules()) do
    g[name] = {}
    for _, file in ipairs(files) do
      for inc in read(file):gmatch('#include "([%w_]+)%.h"') do
        if inc ~= name then g[name][inc] = true end
      end
    end
  end
  return g
end

-- A cycle as a list of modules, or nil.
local function find_cycle(g)
  local state, stack = {}, {}
  local function visit(n)
    state[n] = "open"
    stack[#stack + 1] = n
    for m in pairs(g[n] or {}) do
      if state[m] == "open" then
        local cycle, from = {}, nil
        for i, s in ipairs(stack) do if s == m then from = i end end
        for i = from, #stack do cycle[#cycle + 1] = stack[i] end
        cycle[#cycle + 1] = m
        return cycle
      elseif state[m] == nil then
        local c = visit(m)
        if c then return c end
      end
    end
    state[n] = "done"
    stack[#stack] = nil
  end
  for n in pairs(g) do
    if state[n] == nil then
      local c = visit(n)
      if c then return c end
    end
  end
end

describe("src/ layering", function()
  it("has no include circle", function()
    local cycle = find_cycle(graph())
    assert(cycle == nil, "include circle: " .. table.concat(cycle or {}, " -> "))
  end)

  it("finds a circle when there is one (the check can fail)", function()
    local g = graph()
    g.protocol = g.protocol or {}
    g.protocol.token = true -- protocol.h including token.h would close a loop
    assert.is_table(find_cycle(g))
  end)

  -- The files the Makefile's PROTOCOL_SRC lists (its continued lines too).
  local function protocol_sources()
    local text, files = read(emu.repo_root() .. "/Makefile"), {}
    local value = assert(text:match("\nPROTOCOL_SRC%s*:=%s*(.-[^\\])\n"), "no PROTOCOL_SRC in the Makefile")
    for file in value:gmatch("src/[%w_]+%.c") do files[#files + 1] = file end
    return files
  end

  it("keeps the protocol layer free of Lua and libcurl", function()
    local files = protocol_sources()
    assert.truthy(#files >= 10, "PROTOCOL_SRC lists " .. #files .. " files")
    files[#files + 1] = "src/protocol.h"
    for _, path in ipairs(files) do
      for inc in read(emu.repo_root() .. "/" .. path):gmatch('#include ["<]([^">]+)[">]') do
        assert(not inc:find("lua") and not inc:find("curl") and inc ~= "compat.h" and inc ~= "core.h"
          and inc ~= "transport.h", path .. " includes " .. inc)
      end
    end
  end)
end)
