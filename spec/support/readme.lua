-- Runs the README's ```lua examples as written, against the emulator.
local M = {}

-- The first ```lua block under the `## <heading>` section of README.md.
function M.block(heading)
  local f = assert(io.open("README.md"))
  local text = f:read("*a")
  f:close()
  local at = assert(text:find("\n## " .. heading .. "\n", 1, true), "README has no section " .. heading)
  local source = text:match("```lua\n(.-)```", at)
  assert(source, "README section " .. heading .. " has a ```lua block")
  return source
end

-- Runs `source` with `print` captured and AVALARA_EMULATOR_URL set to `url`;
-- returns the printed lines.
function M.run(source, url)
  local printed = {}
  local env = setmetatable({
    print = function(...)
      local parts = {}
      for i = 1, select("#", ...) do parts[i] = tostring((select(i, ...))) end
      printed[#printed + 1] = table.concat(parts, "\t")
    end,
    os = setmetatable({ getenv = function(name)
      if name == "AVALARA_EMULATOR_URL" then return url end
      return os.getenv(name)
    end }, { __index = os }),
  }, { __index = _G })
  local chunk = assert((loadstring or load)(source, "=README", "t", env))
  if setfenv then setfenv(chunk, env) end
  chunk()
  return printed
end

return M
