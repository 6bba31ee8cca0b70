--- Private files and folders: where the stores, journals and temporary
-- files of this library go (issue 20).
--
-- The rules, as OpenSSH's `StrictModes`: a folder or file that exists must
-- be this user's own, not a symbolic link, and not writable by its group or
-- others (a store file: not readable by them either); anything else is
-- refused with a message that names it and says what to do. What is made
-- is made exclusively (`O_CREAT|O_EXCL|O_NOFOLLOW`, `mkdir`): folders 0700,
-- files 0600 (or the mode asked), never through a link, and a handle opened
-- on a new file is checked to be the very file created (device and inode).
-- The system calls are `avalara.core`'s `sys` table (C, no luv needed).
--
-- A failure is `nil, err`, an `avalara.error` of kind "store" with `path`,
-- `code` "unsafe" (another user could reach it: a link, another owner,
-- group or other bits) or "io" (any other reason), and `errno` when the
-- system gave one.
-- @module avalara.private
local core = require "avalara.core"
local sys = core.sys

local M = {}

local ENOENT, EEXIST = 2, 17

--- The folder part of `path` ("." for a bare name).
-- @string path
-- @treturn string
function M.dirname(path)
  local dir = path:match("^(.*)/[^/]*$")
  if dir == nil then return "." end
  if dir == "" then return "/" end
  return dir
end

local function fail(path, message, code, errno)
  return nil, core.error { kind = "store", code = code or "io", message = message, path = path, errno = errno }
end

local function octal(mode)
  return string.format("%04o", mode)
end

-- Why `info` (an lstat of `path`, a `kind` "folder" or "file") may not be
-- used, or nil; and "unsafe" when the reason is that another user could
-- reach it (a link, another owner, group or other bits), not a plain misfit.
-- `mask`: the permission bits others may not have.
local function unsafe(path, info, kind, mask)
  if info.type == "link" then
    return path .. " is a symbolic link; a private " .. kind .. " may not be one (another user could have "
      .. "planted it): use the real path", "unsafe"
  end
  local want = kind == "folder" and "directory" or "file"
  if info.type ~= want then return path .. " is not a " .. (kind == "folder" and "folder" or "regular file") end
  local me = sys.euid()
  if info.uid ~= me then
    return path .. " belongs to user id " .. info.uid .. ", not to this user (" .. me .. "): another user "
      .. "could read or replace what is kept there; use a " .. kind .. " of your own", "unsafe"
  end
  local bad, writable = 0, false
  for _, bit in ipairs { 32, 16, 8, 4, 2, 1 } do -- the group and other bits, 0040 to 0001
    if math.floor(info.mode / bit) % 2 == 1 and math.floor(mask / bit) % 2 == 1 then
      bad = bad + bit
      if bit == 16 or bit == 2 then writable = true end
    end
  end
  if bad ~= 0 then
    return string.format("%s is %s by its group or others (mode %s): chmod %s %s", path,
      writable and "writable" or "readable", octal(info.mode), kind == "folder" and "700" or "600", path), "unsafe"
  end
  return nil
end

--- Checks (and makes, with its missing parents, mode 0700) a private folder.
-- @string dir
-- @tparam[opt] table opts `{create = true}` (default: only check); `mask`, the group and other
-- permission bits refused (default 0022: others may not write; 0077: no access at all)
-- @return true, or nil, err
function M.folder(dir, opts)
  local info, err, code = sys.lstat(dir)
  if not info and code == ENOENT and opts and opts.create then
    local parent = M.dirname(dir)
    if parent ~= dir and not sys.lstat(parent) then
      local ok, perr = M.folder(parent, opts)
      if not ok then return nil, perr end
    end
    info, err, code = sys.create_dir(dir)
    if not info and code == EEXIST then info, err, code = sys.lstat(dir) end
  end
  if not info then return fail(dir, "cannot use the folder " .. tostring(err), "io", code) end
  local why, code2 = unsafe(dir, info, "folder", opts and opts.mask or 18) -- 0022
  if why then return fail(dir, why, code2) end
  return true
end

--- Checks an existing private file: nil, nil when absent.
-- @string path
-- @tparam[opt=0022] int mask the group and other permission bits refused (0077: no access at all)
-- @return the lstat info, or nil (absent), or nil, err
function M.file(path, mask)
  local info, err, code = sys.lstat(path)
  if not info then
    if code == ENOENT then return nil end
    return fail(path, "cannot use " .. tostring(err), "io", code)
  end
  local why, code2 = unsafe(path, info, "file", mask or 18)
  if why then return fail(path, why, code2) end
  return info
end

--- Creates `path` exclusively (never through a link, never an existing
-- file) with `mode` (default: 0666 less the umask), and opens it "r+b",
-- checked to be the file created.
-- @string path
-- @tparam[opt] int mode
-- @return the open file, or nil, err (`errno` 17 when it exists)
function M.create(path, mode)
  if not io then return fail(path, "cannot create " .. path .. ": files need the io library, which this Lua state "
    .. "(a sandbox?) does not have", "io") end
  local made, err, code = sys.create_file(path, mode)
  if not made then return fail(path, "cannot create " .. tostring(err), "io", code) end
  local f, oerr = io.open(path, "r+b")
  local info = f and sys.fstat(f)
  if not (info and info.dev == made.dev and info.ino == made.ino) then
    if f then f:close() end
    return fail(path, "cannot create " .. path .. ": " .. (oerr or "it was replaced as it was created"), "unsafe")
  end
  return f
end

--- A new temporary file beside `path` (same folder, so it can be renamed
-- over it): a hidden random name, created as `create` does.
-- @string path
-- @string suffix what ends the name (`.hscode-partial`)
-- @tparam[opt] int mode
-- @return the open file and its path, or nil, err
function M.temp_beside(path, suffix, mode)
  local dir, base = M.dirname(path), path:match("([^/]*)$")
  local err
  for _ = 1, 8 do
    local name = dir .. "/." .. base .. "." .. assert(sys.random_hex(6)) .. suffix
    local f, why = M.create(name, mode)
    if f then return f, name end
    err = why
    if why.errno ~= EEXIST then break end
  end
  return nil, err
end

--- A new private folder (mode 0700, a random name) in `$TMPDIR` (else
-- `/tmp`), for files that have no place of their own (stdin's copy, a
-- batch's journal without `--out`). Remove it with `remove_dir`.
-- @string prefix
-- @return its path, or nil, err
function M.temp_dir(prefix)
  local base = os and os.getenv("TMPDIR")
  if not base or base:sub(1, 1) ~= "/" then base = "/tmp" end
  local err, errno
  for _ = 1, 8 do
    local dir = base .. "/" .. prefix .. "-" .. assert(sys.random_hex(8))
    local info, why, code = sys.create_dir(dir)
    if info then return dir end
    err, errno = why, code
    if code ~= EEXIST then break end
  end
  return fail(base, "cannot make a temporary folder: " .. tostring(err), "io", errno)
end

--- Removes the files `names` of a folder made by `temp_dir`, then the folder.
-- @string dir
-- @tparam table names
function M.remove_dir(dir, names)
  if not os then return end -- nothing was made (temp_dir's files need io and os)
  for _, name in ipairs(names) do os.remove(dir .. "/" .. name) end
  os.remove(dir)
end

return M
