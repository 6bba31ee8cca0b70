-- Shared by the specs that build and run a small C host (spec/support/host_*.c,
-- examples/embed/): a shell command's output and exit code, a private scratch
-- folder, the compiler line and the launch that keeps this run's sanitizer
-- runtime preloaded (writing a script: spec/support/files.lua).
local M = {}

--- Runs cmd in the shell, its error output with its output: the text and the
-- exit code (0 on success).
function M.sh(cmd)
  local p = assert(io.popen(cmd .. " 2>&1"))
  local out = p:read("*a")
  local ok, _, code = p:close()
  return out, ok and 0 or code
end

--- A new folder only this user can read (M.rmdir removes it).
function M.tmpdir()
  local dir = os.tmpname()
  os.remove(dir)
  assert(os.execute("mkdir -m 700 " .. dir))
  return dir
end

--- Removes dir and all in it (nothing when dir is nil).
function M.rmdir(dir)
  if dir then os.execute("rm -rf " .. dir) end
end

--- Compiles spec/support/<name>.c into dir/<name> against the Lua of
-- pkg-config package lua_pc ("lua5.4" unless given), with extra flags after
-- (a string, or nil); raises with the compiler's output. Returns the path.
function M.compile(name, dir, extra, lua_pc)
  local binary = dir .. "/" .. name
  local out, code = M.sh(("cc -O1 -g -Wall -Wextra -Werror -o %s spec/support/%s.c $(pkg-config --cflags --libs %s)%s")
    :format(binary, name, lua_pc or "lua5.4", extra and " " .. extra or ""))
  assert(code == 0, out)
  return binary
end

--- The command that starts binary as this run starts interpreters: SPEC_LUA
-- with its last word (the interpreter) replaced, so that a sanitizer's
-- runtime it preloads stays preloaded.
function M.launch(binary)
  return ((os.getenv("SPEC_LUA") or "lua5.4"):gsub("%S+$", function() return binary end))
end

return M
