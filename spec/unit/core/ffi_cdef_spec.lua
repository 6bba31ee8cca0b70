-- The LuaJIT FFI's view of the plain C ABI (lua/avalara/ffi/cdef.lua) cannot
-- drift from include/avalara/abi.h: the cdef's declarations equal the
-- header's after the same normalising (comments, preprocessor lines, the
-- C++ guard, AVALARA_API, white space), its VERSION is AVL_ABI_VERSION, and
-- under LuaJIT every struct's size and every field's offset equal a C
-- program's (built here against the header).
local H = require "spec.support.host"
local cdef = require "avalara.ffi.cdef"

local function read(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("*a")
  f:close()
  return s
end

-- Declarations as one canonical line: no comments, no preprocessor lines
-- (nor what `#ifdef __cplusplus` guards), no AVALARA_API, single spaces
-- and none around punctuation.
local function normalise(s)
  s = s:gsub("/%*.-%*/", " "):gsub("//[^\n]*", " ")
  s = s:gsub("#ifdef __cplusplus.-#endif", " ")
  s = s:gsub("\n[ \t]*#[^\n]*", "\n"):gsub("^[ \t]*#[^\n]*", "")
  s = s:gsub("AVALARA_API", " ")
  s = s:gsub("%s+", " ")
  s = s:gsub(" ?([%(%)%{%}%[%];,%*=]) ?", "%1")
  return (s:gsub("^ ", ""):gsub(" $", ""))
end

local header = read("include/avalara/abi.h")

-- The structs of a normalised cdef: { {name, {field, ...}}, ... }.
local function structs(norm)
  local out = {}
  for body, name in norm:gmatch("typedef struct{(.-)}([%w_]+);") do
    local fields = {}
    for decl in body:gmatch("[^;]+") do fields[#fields + 1] = decl:gsub("%[.-%]$", ""):match("([%w_]+)$") end
    out[#out + 1] = { name = name, fields = fields }
  end
  return out
end

describe("the FFI cdef (avalara.ffi.cdef)", function()
  it("declares exactly what include/avalara/abi.h declares", function()
    assert.equal(normalise(header), normalise(cdef.CDEF))
  end)

  it("has the header's AVL_ABI_VERSION", function()
    assert.equal(tonumber(header:match("#define AVL_ABI_VERSION (%d+)")), cdef.VERSION)
    assert.equal(tonumber(header:match("#define AVL_ERR_BODY_MAX (%d+)")), cdef.ERR_BODY_MAX)
    if type(jit) == "table" then assert.equal(cdef.VERSION, assert(cdef.load()).C.avl_abi_version()) end
  end)

  it("normalises away only what C does not see (a changed field would show)", function()
    local changed = cdef.CDEF:gsub("int retryable;", "long retryable;", 1)
    assert.are_not.equal(normalise(header), normalise(changed))
    assert.equal(3, #structs(normalise(cdef.CDEF)))
  end)

  it("lays every struct out as C does (sizeof, offsetof), under LuaJIT", function()
    if type(jit) ~= "table" then return pending("LuaJIT only") end
    local abi = assert(cdef.load())
    local ffi = abi.ffi
    local lines = { "#include <stdio.h>", "#include <stddef.h>", "#include <avalara/abi.h>", "int main(void) {" }
    local want = {}
    for _, st in ipairs(structs(normalise(cdef.CDEF))) do
      lines[#lines + 1] = ('printf("%s %%zu\\n", sizeof(%s));'):format(st.name, st.name)
      want[#want + 1] = ("%s %d"):format(st.name, ffi.sizeof(st.name))
      for _, f in ipairs(st.fields) do
        lines[#lines + 1] = ('printf("%s.%s %%zu\\n", offsetof(%s, %s));'):format(st.name, f, st.name, f)
        want[#want + 1] = ("%s.%s %d"):format(st.name, f, ffi.offsetof(st.name, f))
      end
    end
    lines[#lines + 1] = "return 0; }"
    local dir = H.tmpdir()
    local src = dir .. "/layout.c"
    local f = assert(io.open(src, "w"))
    f:write(table.concat(lines, "\n"), "\n")
    f:close()
    local out, code = H.sh(("cc -std=c99 -Wall -Werror -Iinclude -o %s/layout %s && %s/layout"):format(dir, src, dir))
    H.rmdir(dir)
    assert.equal(0, code, out)
    assert.equal(table.concat(want, "\n") .. "\n", out)
    assert.equal(4, ffi.sizeof("avl_verdict"))
    assert.equal(cdef.ERR_BODY_MAX + 1, ffi.sizeof(ffi.new("avl_err").body))
  end)

  it("loads the same core.so the classic binding is, or says why not", function()
    local abi, why = cdef.load()
    if type(jit) ~= "table" then
      assert.is_nil(abi)
      assert.matches("needs LuaJIT", why)
      assert.is_false(require "avalara.ffi.abi")
      return
    end
    assert.equal(package.searchpath("avalara.core", package.cpath), abi.path)
    assert.equal(abi, require "avalara.ffi.abi")
    assert.is_not_nil(abi.C.avl_client_perform)
  end)
end)
