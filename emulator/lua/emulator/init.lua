-- Runs once in the nginx master (init_by_lua) before the workers fork, so the
-- base configuration and the HS nomenclature are loaded once and shared.
local M = {}

M.paths = {}

local function load_config(path)
  local chunk, err = loadfile(path)
  if not chunk then error("emulator: cannot load config " .. path .. ": " .. err) end
  local ok, cfg = pcall(chunk)
  if not ok or type(cfg) ~= "table" then
    error("emulator: config " .. path .. " must return a table: " .. tostring(cfg))
  end
  return cfg
end

-- opts: config (Lua file), data (HS data folder), countries (ISO 3166-1
-- JSON of Debian's iso-codes; default emulator.countries.DEFAULT_PATH),
-- ca (test CA PEM path), instance (random id emulator/run checks to know
-- the server is its own).
function M.init(opts)
  M.paths = opts
  M.base = load_config(opts.config)
  require("emulator.hs").load(opts.data)
  require("emulator.countries").load(opts.countries)
  local f = io.open(opts.ca, "rb")
  M.ca_pem = f and f:read("*a") or ""
  if f then f:close() end
end

return M
