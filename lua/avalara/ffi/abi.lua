--- The plain C ABI (include/avalara/abi.h) through LuaJIT's FFI: `{ ffi = ffi, C = lib,
-- VERSION = n, path = core.so's file }`, or false where it cannot load (not LuaJIT, no core.so, an
-- older core.so). `require` cannot hand back a reason: `require("avalara.ffi.cdef").load()` gives
-- nil, reason. The declarations and the loading are avalara.ffi.cdef's.
-- @module avalara.ffi.abi
return require("avalara.ffi.cdef").load() or false
