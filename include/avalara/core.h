/*
 * avalara/core.h: the C interface of the avalara.core Lua module, for a
 * host that embeds Lua and links the module into its program (the static
 * library libavalara_core.a, pkg-config avalara-core) instead of loading
 * avalara/core.so with `require`. Everything else is Lua: the module's
 * functions are called from Lua, as docs/core.md says.
 *
 *     #include <avalara/core.h>
 *     luaL_requiref(L, "avalara.core", luaopen_avalara_core, 0);
 *     lua_pop(L, 1);
 *
 * or, so that `require "avalara.core"` (and the Lua layer, `require
 * "avalara"`) finds it when first needed:
 *
 *     lua_getglobal(L, "package");
 *     lua_getfield(L, -1, "preload");
 *     lua_pushcfunction(L, luaopen_avalara_core);
 *     lua_setfield(L, -2, "avalara.core");
 *     lua_pop(L, 2);
 *
 * Build against the Lua the host runs (5.1, 5.3, 5.4 or LuaJIT 2.1: one
 * library for each, `make static LUA=...`). docs/embedding.md has the recipe.
 *
 * Before opening: nothing is required. A host may call curl_global_init
 * itself first (the module's own call, once per process under a mutex, then
 * does nothing more); opening needs neither `require` nor lua-cjson.
 * cjson.encode is looked up when a request body given as a table first
 * needs it: package.loaded.cjson (filled by `require` or by
 * luaL_requiref(L, "cjson", luaopen_cjson, 1)), else `require "cjson"`
 * (package.preload.cjson, package.cpath); any table with an `encode`
 * function serves. Without one, only that call raises, naming the ways to
 * give one.
 *
 * Opening: allocates only; it raises only a memory error (call it
 * protected, luaL_requiref inside lua_pcall, when the allocator may fail).
 *
 * Threads: one lua_State per thread, as Lua requires. Several threads may
 * open the module at the same time, each in its own state: the one process
 * global, libcurl's initialisation, runs once under a mutex; each state
 * has its own connection pool, share handle and metatables.
 *
 * After: lua_close frees everything the module made in that state (tokens
 * wiped). The module never calls curl_global_cleanup: a host that wants to
 * may, once every state that opened the module is closed.
 */
#ifndef AVALARA_CORE_H
#define AVALARA_CORE_H

#include <lua.h>

/* The version of the module (core.version, the rockspecs, CHANGELOG.md:
 * src/version.h; spec/unit/packaging_spec.lua checks they agree). */
#define AVALARA_VERSION_MAJOR 0
#define AVALARA_VERSION_MINOR 1
#define AVALARA_VERSION_PATCH 0
#define AVALARA_VERSION_STRING "0.1.0"
/* One number to compare: 10000 * major + 100 * minor + patch. */
#define AVALARA_VERSION_NUM \
    (AVALARA_VERSION_MAJOR * 10000 + AVALARA_VERSION_MINOR * 100 + AVALARA_VERSION_PATCH)

#if defined(__GNUC__)
#define AVALARA_API __attribute__((visibility("default")))
#else
#define AVALARA_API
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* Opens the module: pushes its table (a lua_CFunction, as `require` and
 * luaL_requiref call it). */
AVALARA_API int luaopen_avalara_core(lua_State *L);

#ifdef __cplusplus
}
#endif

#endif
