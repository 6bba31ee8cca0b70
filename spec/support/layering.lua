-- The Lua layer's layering rules (issue 22; docs/design.md, "Lua layer
-- layout"), as pure functions over sources, so that a spec can run them on
-- lua/avalara and on a tiny fake tree alike.
--
--   local L = require "spec.support.layering"
--   local tree = L.read_tree(root .. "/lua")   -- {["avalara.x"] = {path=, source=}}
--   local report = L.check(tree)               -- {cycles=, upward=, unknown=, missing=, private=,
--                                              --  size=, delegation=, cli_deps=, clock=}, each a list of
--                                              --  strings naming the module, the line and what is wrong
--
-- What it reads: every `require "x"`, `require("x")`, `require("p." .. name)`
-- (an edge to every module named p.*), `pcall(require, "x")` and
-- `package.loaded["x"]`, at the top
-- level or inside functions alike; every `x._field`, `x:_method()` and
-- `x["_field"]`. A private field belongs to the modules that write it
-- (`x._f = v`, `{ _f = v }`, `function X._f()`, `function X:_f()`); a module
-- that reads a `_field` it never writes, which another module writes, reads
-- that module's private field. (Names beginning with "__" -- metamethods --
-- and _G, _ENV, _VERSION are public.)
local M = {}

-- The layers, high to low; a module may require modules of its own layer or
-- lower. "p.*" is every module below p (not p itself).
M.LAYERS = {
  { 5, "CLI", { "avalara.cli", "avalara.cli.*" } },
  { 4, "facade", { "avalara" } },
  { 3, "compose", { "avalara.client", "avalara.fleet", "avalara.fleet.*", "avalara.partner", "avalara.partner.*",
    "avalara.openresty", "avalara.device" } },
  { 2, "services", { "avalara.hs", "avalara.hs.*", "avalara.items", "avalara.items.*", "avalara.webhook",
    "avalara.webhook.*", "avalara.batch", "avalara.batch.*", "avalara.async", "avalara.async.*" } },
  { 1, "foundation", { "avalara.token.*", "avalara.transport", "avalara.transport.*", "avalara.store",
    "avalara.store.*", "avalara.resp.*", "avalara.redis.*",
    "avalara.retry", "avalara.clock", "avalara.error", "avalara.options", "avalara.environments", "avalara.paths",
    "avalara.paging", "avalara.csv", "avalara.private", "avalara.warning", "avalara.digest", "avalara.country" } },
  { 0, "C", { "avalara.core", "avalara.ffi", "avalara.ffi.*" } },
}

-- Modules of the C core (no Lua file).
M.NATIVE = { ["avalara.core"] = true }

-- The one clock of the Lua layer: no other module reads the time itself.
M.CLOCK = "avalara.clock"

-- Requires that belong to the CLI's rock, never to the library's.
M.CLI_ONLY = { argparse = true, luv = true }

M.MAX_LINES = 400
M.SIZE_NOTE = "Why this size:"
M.SIZE_NOTE_WITHIN = 40 -- the note must be in the file's first lines

local PUBLIC_UNDERSCORE = { _G = true, _ENV = true, _VERSION = true }

------------------------------------------------------------------------
-- A small Lua lexer: tokens {t = "name"|"string"|"number"|"op", v =, line =};
-- comments are dropped.

local function long_bracket(src, i)
  local eq = src:match("^%[(=*)%[", i)
  if not eq then return nil end
  local close = "]" .. eq .. "]"
  local s = i + #eq + 2
  local e = src:find(close, s, true)
  if not e then error("unfinished long bracket at byte " .. i) end
  return src:sub(s, e - 1), e + #close
end

local OPS3 = { ["..."] = true }
local OPS2 = { [".."] = true, ["=="] = true, ["~="] = true, ["<="] = true, [">="] = true, ["::"] = true,
  ["//"] = true, ["<<"] = true, [">>"] = true }

function M.lex(src)
  local toks, i, line, n = {}, 1, 1, #src
  local function count_lines(s) local _, c = s:gsub("\n", "") line = line + c end
  if src:sub(1, 2) == "#!" then i = (src:find("\n", 1, true) or n) end
  while i <= n do
    local c = src:sub(i, i)
    if c == "\n" then
      line, i = line + 1, i + 1
    elseif c:match("%s") then
      i = i + 1
    elseif src:sub(i, i + 1) == "--" then
      local body, after = long_bracket(src, i + 2)
      if body then
        count_lines(body) i = after
      else
        i = (src:find("\n", i, true) or n + 1)
      end
    elseif c:match("[%a_]") then
      local name = src:match("^[%w_]+", i)
      toks[#toks + 1] = { t = "name", v = name, line = line }
      i = i + #name
    elseif c:match("%d") or (c == "." and src:sub(i + 1, i + 1):match("%d")) then
      local num = src:match("^0[xX][%x%.]*[pP][+-]?%d+", i) or src:match("^0[xX][%x%.]*", i)
        or src:match("^[%d%.]+[eE][+-]?%d+", i) or src:match("^[%d%.]+", i)
      toks[#toks + 1] = { t = "number", v = num, line = line }
      i = i + #num
    elseif c == '"' or c == "'" then
      local j, start = i + 1, line
      while true do
        local d = src:sub(j, j)
        if d == "" then error("unfinished string on line " .. start) end
        if d == "\\" then
          if src:sub(j + 1, j + 1) == "\n" then line = line + 1 end
          j = j + 2
        elseif d == c then
          break
        else
          if d == "\n" then error("unfinished string on line " .. start) end
          j = j + 1
        end
      end
      toks[#toks + 1] = { t = "string", v = src:sub(i + 1, j - 1), line = start }
      i = j + 1
    elseif c == "[" and long_bracket(src, i) then
      local body, after = long_bracket(src, i)
      toks[#toks + 1] = { t = "string", v = body, line = line }
      count_lines(body)
      i = after
    else
      local op = src:sub(i, i + 2)
      if not OPS3[op] then op = src:sub(i, i + 1) end
      if not OPS3[op] and not OPS2[op] then op = c end
      toks[#toks + 1] = { t = "op", v = op, line = line }
      i = i + #op
    end
  end
  return toks
end

------------------------------------------------------------------------
-- One module's facts.

local function is_private(name)
  return name:match("^_[%w]") ~= nil and not name:match("^__") and not PUBLIC_UNDERSCORE[name]
end

-- {requires = {{name=, line=, prefix=bool, optional=bool}}, reads = {{field=, line=}},
--  writes = {field=true}, lines = n, delegates = "target" | nil, source = src}
function M.scan(src)
  local toks = M.lex(src)
  local facts = { requires = {}, reads = {}, writes = {}, clocks = {}, source = src }
  local _, nl = src:gsub("\n", "")
  facts.lines = nl + ((src ~= "" and src:sub(-1) ~= "\n") and 1 or 0)
  local function tok(k) return toks[k] or { t = "eof", v = "" } end
  local function is(k, t, v) local x = tok(k) return x.t == t and (v == nil or x.v == v) end

  -- After a variable ending before `at`: the index past `.name` / `["s"]` suffixes.
  local function suffixes(at)
    while true do
      if is(at, "op", ".") and is(at + 1, "name") then at = at + 2
      elseif is(at, "op", "[") and is(at + 1, "string") and is(at + 2, "op", "]") then at = at + 3
      else return at end
    end
  end
  -- Whether the variable starting at `base` (a name) and ending before
  -- `after` is one target of a multiple assignment `a.b, c._f, d = ...`
  -- (and not an item of a table constructor or a call's arguments).
  local function multi_target(base, after)
    local j = after
    while is(j, "op", ",") and is(j + 1, "name") do j = suffixes(j + 2) end
    if not is(j, "op", "=") then return false end
    -- back to the list's first variable, then what comes before it
    local b = base
    while is(b - 1, "op", ",") do
      local c = b - 2
      while is(c, "name") and is(c - 1, "op", ".") do c = c - 2 end
      while is(c, "op", "]") and is(c - 1, "string") and is(c - 2, "op", "[") do
        c = c - 3
        while is(c, "name") and is(c - 1, "op", ".") do c = c - 2 end
      end
      if not is(c, "name") then return false end
      b = c
    end
    local before = tok(b - 1)
    return not (before.t == "op" and (before.v == "{" or before.v == "(" or before.v == ";" or before.v == "="))
  end

  for k = 1, #toks do
    local x = toks[k]
    -- require "x" / require("x") / require("p." .. name) / pcall(require, "x")
    if x.t == "name" and x.v == "require" and not is(k - 1, "op", ".") and not is(k - 1, "op", ":") then
      if is(k + 1, "string") then
        facts.requires[#facts.requires + 1] = { name = tok(k + 1).v, line = x.line }
      elseif is(k + 1, "op", "(") and is(k + 2, "string") then
        local prefix = is(k + 3, "op", "..")
        facts.requires[#facts.requires + 1] = { name = tok(k + 2).v, line = x.line, prefix = prefix }
      elseif is(k - 1, "op", "(") and (is(k - 2, "name", "pcall") or is(k - 2, "name", "xpcall"))
        and is(k + 1, "op", ",") and is(k + 2, "string") then
        facts.requires[#facts.requires + 1] = { name = tok(k + 2).v, line = x.line, optional = true }
      end
    end
    -- package.loaded["x"] (reaching a module without require is still depending on it)
    if x.t == "name" and x.v == "package" and is(k + 1, "op", ".") and is(k + 2, "name", "loaded")
      and is(k + 3, "op", "[") and is(k + 4, "string") then
      facts.requires[#facts.requires + 1] = { name = tok(k + 4).v, line = x.line }
    end
    -- x._f / x:_f / x["_f"]
    local field, after
    if x.t == "op" and (x.v == "." or x.v == ":") and is(k + 1, "name") and is_private(tok(k + 1).v) then
      field, after = tok(k + 1).v, k + 2
    elseif x.t == "op" and x.v == "[" and is(k + 1, "string") and is_private(tok(k + 1).v) and is(k + 2, "op", "]") then
      field, after = tok(k + 1).v, k + 3
    end
    if field then
      -- a definition: `function A.b._f(` / `function A:_f(`
      local j = k - 1
      while is(j, "name") and (is(j - 1, "op", ".") or is(j - 1, "op", ":")) do j = j - 2 end
      local defined = is(j, "name") and is(j - 1, "name", "function")
      if defined or is(after, "op", "=") or multi_target(j, after) then
        facts.writes[field] = true
      else
        facts.reads[#facts.reads + 1] = { field = field, line = x.line }
      end
    end
    -- a clock read or a sleep other than avalara.clock's: os.time() (not os.time(t)), socket.gettime, ngx.now,
    -- ngx.time, socket.sleep, ngx.sleep
    if x.t == "name" and is(k + 1, "op", ".") and is(k + 2, "name") and not is(k - 1, "op", ".") then
      local f = x.v .. "." .. tok(k + 2).v
      local argless = (is(k + 3, "op", "(") and is(k + 4, "op", ")"))
        or not (is(k + 3, "op", "(") or is(k + 3, "op", "{") or is(k + 3, "string"))
      if (f == "os.time" and argless) or f == "socket.gettime" or f == "ngx.now" or f == "ngx.time"
        or f == "socket.sleep" or f == "ngx.sleep" then
        facts.clocks[#facts.clocks + 1] = { what = f, line = x.line }
      end
    end
    -- { _f = v } (a table constructor's key)
    if x.t == "name" and is_private(x.v) and is(k + 1, "op", "=")
      and (is(k - 1, "op", "{") or is(k - 1, "op", ",") or is(k - 1, "op", ";")) then
      facts.writes[x.v] = true
    end
  end

  -- a one-line delegation: `return require "x"` (optionally in parentheses, a trailing ';')
  local t = toks
  if #t >= 3 and t[1].v == "return" and t[2].v == "require" then
    local target, rest
    if t[3].t == "string" then target, rest = t[3].v, 4
    elseif t[3].v == "(" and t[4] and t[4].t == "string" and t[5] and t[5].v == ")" then target, rest = t[4].v, 6 end
    if target and (rest > #t or (rest == #t and t[rest].v == ";")) then facts.delegates = target end
  end
  return facts
end

------------------------------------------------------------------------
-- Layers.

-- The layer number and name of a module by the table, or nil.
function M.layer_of(name, layers)
  for _, row in ipairs(layers or M.LAYERS) do
    for _, pat in ipairs(row[3]) do
      if pat:sub(-2) == ".*" then
        local p = pat:sub(1, -2)
        if name:sub(1, #p) == p and #name > #p then return row[1], row[2] end
      elseif name == pat then
        return row[1], row[2]
      end
    end
  end
end

-- Module name of a file under a `lua/` root: avalara/x/init.lua -> avalara.x.
function M.module_name(rel)
  local name = rel:gsub("%.lua$", ""):gsub("/init$", ""):gsub("/", ".")
  return name
end

-- Every .lua file under root/avalara: {[module] = {path=, source=}}.
function M.read_tree(root)
  local tree = {}
  local p = assert(io.popen("cd '" .. root .. "' && find avalara -name '*.lua' | sort"))
  for rel in p:lines() do
    local f = assert(io.open(root .. "/" .. rel, "r"))
    tree[M.module_name(rel)] = { path = "lua/" .. rel, source = f:read("*a") }
    f:close()
  end
  p:close()
  return tree
end

------------------------------------------------------------------------
-- The check.

local function sorted_keys(t)
  local ks = {}
  for k in pairs(t) do ks[#ks + 1] = k end
  table.sort(ks)
  return ks
end

-- The require cycles: {path = {a, b, ..., a}, members = its strongly
-- connected component}, each elementary cycle found through one edge.
function M.cycles(graph)
  local index, low, on, stack, comps, n = {}, {}, {}, {}, {}, 0
  local function connect(v)
    n = n + 1
    index[v], low[v] = n, n
    stack[#stack + 1], on[v] = v, true
    for _, w in ipairs(sorted_keys(graph[v] or {})) do
      if not index[w] then
        connect(w)
        low[v] = math.min(low[v], low[w])
      elseif on[w] then
        low[v] = math.min(low[v], index[w])
      end
    end
    if low[v] == index[v] then
      local comp = {}
      repeat
        local w = table.remove(stack)
        on[w] = nil
        comp[w] = true
      until w == v
      comps[#comps + 1] = comp
    end
  end
  for _, v in ipairs(sorted_keys(graph)) do if not index[v] then connect(v) end end

  -- within each component, for each edge a -> b, a shortest way from b back
  -- to a (BFS): one elementary cycle per edge, the same cycle listed once
  local function way_back(comp, from, to)
    local prev, queue, qi = { [from] = false }, { from }, 1
    while qi <= #queue do
      local v = queue[qi]
      qi = qi + 1
      if v == to then
        local path = {}
        while v do table.insert(path, 1, v) v = prev[v] end
        return path
      end
      for _, w in ipairs(sorted_keys(graph[v] or {})) do
        if comp[w] and prev[w] == nil then prev[w] = v queue[#queue + 1] = w end
      end
    end
  end
  local out, seen = {}, {}
  for _, comp in ipairs(comps) do
    local members = sorted_keys(comp)
    if #members > 1 or (graph[members[1]] or {})[members[1]] then
      for _, a in ipairs(members) do
        for _, b in ipairs(sorted_keys(graph[a] or {})) do
          if comp[b] then
            local path = way_back(comp, b, a)
            table.insert(path, 1, a) -- a -> b -> ... -> a
            -- the same cycle from its smallest module
            local ring, first = {}, 1
            for i = 1, #path - 1 do ring[i] = path[i] if path[i] < path[first] then first = i end end
            local canon = {}
            for i = 0, #ring - 1 do canon[#canon + 1] = ring[(first - 1 + i) % #ring + 1] end
            canon[#canon + 1] = canon[1]
            local key = table.concat(canon, " ")
            if not seen[key] then seen[key] = true out[#out + 1] = { members = members, path = canon } end
          end
        end
      end
    end
  end
  return out
end

-- tree: {[module] = {path=, source=}}; returns the report (lists of strings)
-- and the graph ({[module] = {[module] = {line, ...}}}).
function M.check(tree, opts)
  opts = opts or {}
  local layers = opts.layers or M.LAYERS
  local facts, report = {}, { cycles = {}, upward = {}, unknown = {}, missing = {}, private = {}, size = {},
    delegation = {}, cli_deps = {}, clock = {} }
  for name, file in pairs(tree) do
    facts[name] = M.scan(file.source)
    facts[name].path = file.path or name
  end

  -- layer of each module: the table, else (a one-line delegation) its target's
  local layer = {}
  local function resolve(name, seen)
    if layer[name] ~= nil then return layer[name] end
    local l = M.layer_of(name, layers)
    if l == nil and facts[name] and facts[name].delegates and not (seen or {})[name] then
      seen = seen or {}
      seen[name] = true
      l = resolve(facts[name].delegates, seen)
    end
    layer[name] = l or false
    return layer[name]
  end
  for _, name in ipairs(sorted_keys(facts)) do
    if resolve(name) == false then
      report.unknown[#report.unknown + 1] = string.format("%s (%s): in no layer of the table", name, facts[name].path)
    end
  end

  -- edges
  local graph = {}
  for _, name in ipairs(sorted_keys(facts)) do
    local f = facts[name]
    graph[name] = graph[name] or {}
    for _, r in ipairs(f.requires) do
      local targets = {}
      if r.prefix then
        for _, other in ipairs(sorted_keys(facts)) do
          if other:sub(1, #r.name) == r.name and #other > #r.name then targets[#targets + 1] = other end
        end
      elseif r.name == "avalara" or r.name:match("^avalara%.") then
        targets[1] = r.name
      end
      if not r.prefix and M.CLI_ONLY[r.name] and not r.optional and (layer[name] or 5) < 5 then
        report.cli_deps[#report.cli_deps + 1] = string.format("%s:%d requires %s (the CLI's dependency)",
          f.path, r.line, r.name)
      end
      for _, to in ipairs(targets) do
        if not facts[to] and not M.NATIVE[to] then
          report.missing[#report.missing + 1] = string.format("%s:%d requires %s, which no file provides",
            f.path, r.line, to)
        else
          graph[name][to] = graph[name][to] or {}
          table.insert(graph[name][to], r.line)
          local lf, lt = layer[name], M.NATIVE[to] and M.layer_of(to, layers) or resolve(to)
          if lf and lt and lt > lf then
            report.upward[#report.upward + 1] = string.format("%s:%d (layer %d) requires %s (layer %d)",
              f.path, r.line, lf, to, lt)
          end
        end
      end
    end
  end
  for _, c in ipairs(M.cycles(graph)) do
    local hops = {}
    for i = 1, #c.path - 1 do
      local a, b = c.path[i], c.path[i + 1]
      hops[#hops + 1] = string.format("%s -> %s (%s:%s)", a, b, facts[a].path, table.concat(graph[a][b], ","))
    end
    report.cycles[#report.cycles + 1] = table.concat(c.path, " -> ") .. ": " .. table.concat(hops, "; ")
  end

  -- private fields: who writes which
  local writers = {}
  for name, f in pairs(facts) do
    for field in pairs(f.writes) do
      writers[field] = writers[field] or {}
      writers[field][#writers[field] + 1] = name
    end
  end
  for _, name in ipairs(sorted_keys(facts)) do
    local f, seen = facts[name], {}
    for _, r in ipairs(f.reads) do
      if not f.writes[r.field] and not seen[r.field] then
        seen[r.field] = true
        local owners = writers[r.field]
        table.sort(owners or {})
        report.private[#report.private + 1] = string.format("%s:%d reads %s, private to %s", f.path, r.line,
          r.field, owners and table.concat(owners, ", ") or "no Lua module (never written here)")
      end
    end
  end

  -- sizes and delegations
  for _, name in ipairs(sorted_keys(facts)) do
    local f = facts[name]
    if f.lines > (opts.max_lines or M.MAX_LINES) then
      local head, k = {}, 0
      for l in (f.source .. "\n"):gmatch("([^\n]*)\n") do
        k = k + 1
        if k > M.SIZE_NOTE_WITHIN then break end
        head[#head + 1] = l
      end
      if not table.concat(head, "\n"):find("%-%-[^\n]*" .. M.SIZE_NOTE:gsub("%p", "%%%0")) then
        report.size[#report.size + 1] = string.format("%s: %d lines, no '-- %s' note in its first %d lines",
          f.path, f.lines, M.SIZE_NOTE, M.SIZE_NOTE_WITHIN)
      end
    end
    if name ~= (opts.clock or M.CLOCK) then
      for _, c in ipairs(f.clocks) do
        report.clock[#report.clock + 1] = string.format("%s:%d reads %s (the one clock is %s: now, sleep)", f.path,
          c.line, c.what, opts.clock or M.CLOCK)
      end
    end
    if f.delegates and not f.source:find("@module", 1, true) then
      report.delegation[#report.delegation + 1] = string.format("%s: delegates to %s without a '--- @module' comment",
        f.path, f.delegates)
    end
  end
  for _, list in pairs(report) do table.sort(list) end
  return report, graph
end

-- The report as text, one violation a line under its heading.
function M.format(report)
  local out = {}
  for _, kind in ipairs { "cycles", "upward", "unknown", "missing", "private", "size", "delegation", "cli_deps",
    "clock" } do
    for _, line in ipairs(report[kind] or {}) do out[#out + 1] = kind .. ": " .. line end
  end
  return table.concat(out, "\n")
end

-- The graph as text: one line per module, its requires (the "before/after" of issue 22).
function M.graph_text(graph)
  local out = {}
  for _, name in ipairs(sorted_keys(graph)) do
    out[#out + 1] = name .. " -> " .. table.concat(sorted_keys(graph[name]), " ")
  end
  return table.concat(out, "\n")
end

return M
