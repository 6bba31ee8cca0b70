-- A sandboxed environment as an embedding host makes one (issue 25): only
-- the base library (without dofile, loadfile, require), string, table,
-- coroutine and math; no os, io, package, debug or LuaSocket. The host's
-- `require` gives the C modules (avalara.core, cjson) and loads avalara.*
-- from lua/ into the sandbox (a fresh copy of every module: the outer
-- state's avalara.clock and stores are not touched). Lua 5.4 through
-- load's env, LuaJIT through setfenv.
local S = {}

local BASE = { "assert", "error", "getmetatable", "ipairs", "next", "pairs", "pcall", "print", "rawequal",
  "rawget", "rawlen", "rawset", "select", "setmetatable", "tonumber", "tostring", "type", "xpcall", "_VERSION",
  "collectgarbage", "load", "unpack", "getfenv", "setfenv", "loadstring" }

local function copy(t)
  local out = {}
  for k, v in pairs(t) do out[k] = v end
  return out
end

--- A new sandbox: returns its environment and its `require`; `opts.modules`
-- adds modules the host provides (name -> value), `opts.root` the lua/ directory,
-- `opts.no_G` leaves `_G` out (an environment a host builds by hand).
function S.new(opts)
  opts = opts or {}
  local root = opts.root or "lua"
  local env = {}
  for _, k in ipairs(BASE) do env[k] = _G[k] end
  for _, lib in ipairs { "string", "table", "coroutine", "math" } do env[lib] = copy(_G[lib]) end
  if not opts.no_G then env._G = env end
  local loaded = { ["avalara.core"] = require "avalara.core", cjson = require "cjson",
    ["cjson.safe"] = require "cjson.safe" }
  for k, v in pairs(opts.modules or {}) do loaded[k] = v end
  local function load_in(path)
    local f = io.open(path, "rb")
    if not f then return nil end
    local src = f:read("a")
    f:close()
    local chunk = assert(load(src, "@" .. path, "t", env))
    if setfenv then setfenv(chunk, env) end
    return chunk
  end
  function env.require(name)
    if loaded[name] ~= nil then return loaded[name] end
    if type(name) ~= "string" or not name:match("^avalara") then
      error("module '" .. tostring(name) .. "' is not available in this sandbox", 2)
    end
    local rel = name:gsub("%.", "/")
    local chunk = load_in(root .. "/" .. rel .. ".lua") or load_in(root .. "/" .. rel .. "/init.lua")
    if not chunk then error("module '" .. name .. "' not found in the sandbox's " .. root, 2) end
    local m = chunk(name)
    if m == nil then m = true end
    loaded[name] = m
    return m
  end
  return env, env.require
end

--- Runs `source` (a chunk of Lua text) in the sandbox `env`, with `...`.
function S.run(env, source, ...)
  local chunk = assert(load(source, "=sandbox", "t", env))
  if setfenv then setfenv(chunk, env) end
  return chunk(...)
end

return S
