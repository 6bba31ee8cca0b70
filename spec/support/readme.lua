-- Runs the ```lua examples of README.md and docs/*.md as written, against the emulator.
local spec_files = require "spec.support.files"
local M = {}

local read = spec_files.read

--- The Markdown files whose examples run: README.md, then every docs/*.md.
function M.files()
  local files = { "README.md" }
  local ls = io.popen("ls docs/*.md 2>/dev/null")
  for name in ls:lines() do files[#files + 1] = name end
  ls:close()
  return files
end

--- The first ```lua block under the `## <heading>` section of README.md or
-- of a docs/*.md page (a heading names one section in all of them), and the
-- file it is in.
function M.block(heading)
  local found, file
  for _, path in ipairs(M.files()) do
    local text = "\n" .. read(path)
    local at = text:find("\n## " .. heading .. "\n", 1, true)
    if at then
      assert(not found, ("the section %q is in both %s and %s"):format(heading, file or "?", path))
      found = text:match("```lua\n(.-)```", at)
      assert(found, path .. " section " .. heading .. " has a ```lua block")
      file = path
    end
  end
  assert(found, "neither README.md nor docs/*.md has a section " .. heading)
  return found, file
end

--- Every ```lua block of a file: a list of `{heading = "## ...", line = n, source = "..."}`.
function M.blocks(path)
  local out, heading, n, inside = {}, nil, 0, nil
  for line in (read(path) .. "\n"):gmatch("(.-)\n") do
    n = n + 1
    if inside then
      if line:match("^%s*```%s*$") then
        out[#out + 1] = inside
        inside = nil
      else
        inside.source = inside.source .. line .. "\n"
      end
    elseif line:match("^%s*```lua%s*$") then
      inside = { heading = heading, line = n, source = "" }
    elseif line:match("^#+ ") then
      heading = line:match("^#+ (.-)%s*$")
    end
  end
  return out
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
