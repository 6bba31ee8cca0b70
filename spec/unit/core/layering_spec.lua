-- The C core's layers (docs/core.md, "Layout"), read from the sources: one
-- folder per layer, each including only its own folder and those below it,
-- and no include circle at all.
--
--   src/version.h    a leaf (the version string), for any layer
--   src/protocol/    pure C: no Lua, no libcurl (what fuzz/ links alone)
--   src/transport/   libcurl; no Lua
--   src/lua/         the Lua bindings: one file per Lua type or function group
local emu = require "spec.support.emulator"

local root = emu.repo_root()
local function read(path) return emu.read_file(root .. "/" .. path) end

local RANK = { [""] = 0, protocol = 1, transport = 2, lua = 3 }

-- Every .c and .h under src/, as paths relative to src/ ("lua/token.c").
local function sources()
  local list, p = {}, assert(io.popen("cd " .. emu.shell_quote(root .. "/src") .. " && find . -name '*.[ch]' | sort"))
  for file in p:lines() do list[#list + 1] = file:gsub("^%./", "") end
  p:close()
  return list
end

local function folder(path) return path:match("^(.*)/[^/]+$") or "" end
local function module(path) return (path:gsub("%.[ch]$", "")) end

-- The quoted includes of a file: { {name = "lua/compat.h", line = n}, ... }.
local function quoted(path)
  local out, n = {}, 0
  for line in (read("src/" .. path) .. "\n"):gmatch("([^\n]*)\n") do
    n = n + 1
    local inc = line:match('^%s*#%s*include%s+"([^"]+)"')
    if inc then out[#out + 1] = { name = inc, line = n } end
  end
  return out
end

-- module -> set of modules whose header it includes (itself excluded); an
-- include is folder-qualified, relative to src/ (the Makefile's -Isrc).
local function graph(files)
  local g = {}
  for _, path in ipairs(files) do
    local m = module(path)
    g[m] = g[m] or {}
    for _, inc in ipairs(quoted(path)) do
      local to = module(inc.name)
      if to ~= m then g[m][to] = true end
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
    local next = {}
    for m in pairs(g[n] or {}) do next[#next + 1] = m end
    table.sort(next)
    for _, m in ipairs(next) do
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
  local names = {}
  for n in pairs(g) do names[#names + 1] = n end
  table.sort(names)
  for _, n in ipairs(names) do
    if state[n] == nil then
      local c = visit(n)
      if c then return c end
    end
  end
end

-- The includes that point up or sideways out of a layer, as messages.
local function upward(files)
  local bad = {}
  for _, path in ipairs(files) do
    local from = folder(path)
    for _, inc in ipairs(quoted(path)) do
      local to = folder(inc.name)
      if RANK[to] == nil or RANK[to] > RANK[from] then
        bad[#bad + 1] = ("src/%s:%d includes %s"):format(path, inc.line, inc.name)
      end
    end
  end
  return bad
end

describe("src/ layering", function()
  local files = sources()

  it("has every source in a layer's folder", function()
    assert.truthy(#files >= 40, "src/ has " .. #files .. " files")
    for _, path in ipairs(files) do
      assert(RANK[folder(path)] ~= nil, "src/" .. path .. " is in no layer's folder")
      if folder(path) == "" then
        assert(path:match("%.h$") and #quoted(path) == 0, "src/" .. path .. " at the top must be a leaf header")
      end
    end
    for name in pairs(RANK) do
      if name ~= "" then
        local n = 0
        for _, path in ipairs(files) do if folder(path) == name then n = n + 1 end end
        assert(n > 0, "src/" .. name .. "/ is empty")
      end
    end
  end)

  it("includes by folder-qualified paths that exist", function()
    local exists = {}
    for _, path in ipairs(files) do exists[path] = true end
    for _, path in ipairs(files) do
      for _, inc in ipairs(quoted(path)) do
        assert(exists[inc.name], ("src/%s:%d includes %q, which is no file under src/"):format(path, inc.line, inc.name))
      end
    end
  end)

  it("has no include circle", function()
    local cycle = find_cycle(graph(files))
    assert(cycle == nil, "include circle: " .. table.concat(cycle or {}, " -> "))
  end)

  it("finds a circle when there is one (the check can fail)", function()
    local g = graph(files)
    assert.truthy(g["lua/token"]["lua/exchange"], "lua/token no longer includes lua/exchange.h")
    g["lua/exchange"]["lua/token"] = true -- exchange.h including token.h would close a loop
    assert.is_table(find_cycle(g))
  end)

  it("has no include pointing up: protocol includes nothing of transport or lua, transport nothing of lua", function()
    local bad = upward(files)
    assert(#bad == 0, table.concat(bad, "\n"))
  end)

  it("finds an include pointing up when there is one (the check can fail)", function()
    local real = quoted
    quoted = function(path) -- the local above, for this case only
      local out = real(path)
      if path == "protocol/buf.c" then out[#out + 1] = { name = "transport/transport.h", line = 0 } end
      return out
    end
    local ok, bad = pcall(upward, files)
    quoted = real
    assert.is_true(ok)
    assert.equal(1, #bad)
    assert.matches("src/protocol/buf.c:0 includes transport/transport.h", bad[1], 1, true)
  end)

  -- A system header a layer must not see, or nil.
  local function forbidden(layer, header)
    if (layer == "protocol" or layer == "transport")
      and (header:match("^lua") or header:match("^lauxlib") or header:match("^luajit")) then
      return "Lua"
    end
    if layer == "protocol" and header:match("^curl/") then return "libcurl" end
  end

  it("keeps Lua out of protocol/ and transport/, and libcurl out of protocol/", function()
    for _, path in ipairs(files) do
      local layer, text = folder(path), read("src/" .. path)
      for header in text:gmatch('#%s*include%s*<([^>]+)>') do
        local what = forbidden(layer, header)
        assert(what == nil, "src/" .. path .. " includes <" .. header .. "> (" .. tostring(what) .. ")")
      end
      if layer == "protocol" or layer == "transport" then
        assert(not text:find("lua_State", 1, true), "src/" .. path .. " names lua_State")
      end
      if layer == "protocol" then
        assert(not text:find("CURL", 1, true), "src/" .. path .. " names a libcurl type")
      end
    end
  end)

  it("registers each Lua type in one binding file, and each binding's opener in its own header", function()
    local where = {}
    for _, path in ipairs(files) do
      if folder(path) == "lua" then
        local text = read("src/" .. path)
        for name in text:gmatch('#define%s+[%w_]+_MT%s+"([^"]+)"') do
          assert(where[name] == nil, name .. " is defined in src/" .. tostring(where[name]) .. " and src/" .. path)
          where[name] = path
        end
        local opener = path:match("%.c$") and text:match("\nvoid (avl_[%w_]+_open)%(lua_State %*L, int uv%) {")
        if opener then
          local header = path:gsub("%.c$", ".h")
          assert(read("src/" .. header):find(opener .. "(", 1, true), opener .. " is not declared in src/" .. header)
        end
      end
    end
    assert.equal("lua/token.h", where["avalara.token"])
    assert.equal("lua/error.c", where["avalara.error"])
  end)

  it("builds the fuzz harnesses from src/protocol/ alone", function()
    local text = read("Makefile")
    local value = assert(text:match("\nPROTOCOL_SRC%s*:=%s*([^\n]+)"), "no PROTOCOL_SRC in the Makefile")
    assert.matches("src/protocol/", value, 1, true)
    for dir in value:gmatch("src/([%w_]+)/") do assert.equal("protocol", dir) end
    local p = assert(io.popen("cd " .. emu.shell_quote(root) .. " && ls fuzz/*.c"))
    for harness in p:lines() do
      for inc in read(harness):gmatch('#%s*include%s*"([^"]+)"') do
        assert(folder(inc) == "protocol", harness .. " includes " .. inc)
      end
    end
    p:close()
  end)

  it("builds the C ABI's harness (fuzz_abi.c) from src/protocol/ and the ABI's files without libcurl calls", function()
    local text = read("Makefile")
    local value = assert(text:match("\nFUZZ_SRC%s*:=%s*([^\n]+)"), "no FUZZ_SRC in the Makefile")
    local extra = {}
    for file in value:gmatch("src/[%w_/]+%.c") do extra[#extra + 1] = file end
    table.sort(extra)
    assert.same({ "src/transport/abi.c", "src/transport/options.c", "src/transport/receive.c" }, extra)
    -- abi.c sends nothing: sending over libcurl is abi_client.c
    assert.is_nil(read("src/transport/abi.c"):find("curl_", 1, true))
    assert.is_nil(read("src/transport/abi.c"):find("CURL", 1, true))
  end)
end)
