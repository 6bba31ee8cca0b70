-- Files in specs: a file's text, a command's lines, writing a file.
local M = {}

--- The whole text of `path` (raises when it cannot be read).
function M.read(path)
  local f = assert(io.open(path))
  local text = f:read("*a")
  f:close()
  return text
end

--- The lines a shell command prints.
function M.lines(cmd)
  local out, p = {}, io.popen(cmd)
  for line in p:lines() do out[#out + 1] = line end
  p:close()
  return out
end

--- Writes text to path (as bytes); returns path.
function M.write(path, text)
  local f = assert(io.open(path, "wb"))
  f:write(text)
  f:close()
  return path
end

return M
