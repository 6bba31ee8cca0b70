/* A sandboxing Lua 5.4 host (spec/integration/client/sandbox_host_spec.lua;
 * after ../shared/repro/embed/host_sandbox.c, issue 25 defect 8): the state
 * has only the base library (without dofile and loadfile), string, table,
 * coroutine and math: no io, os, package, debug or LuaSocket. The host gives
 * it what a game engine would:
 *   - require(name): "avalara.core" and "cjson" from the shared objects the
 *     host opened itself (no package library), "avalara.*" read from LUADIR;
 *     anything else is refused;
 *   - host_now() (CLOCK_REALTIME, seconds) and host_sleep(seconds), for
 *     avalara.clock.set.
 *   host_sandbox CORE_SO CJSON_SO LUADIR SCRIPT [args...]  ->  exit 0 when the script ran */
#define _POSIX_C_SOURCE 200809L
#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

static const char *luadir;
static lua_CFunction open_core, open_cjson, open_cjson_safe;

static lua_CFunction symbol(void *lib, const char *name) {
    lua_CFunction f = NULL;
    void *p = lib ? dlsym(lib, name) : NULL;
    if (p != NULL)
        memcpy(&f, &p, sizeof f); /* object to function pointer, as POSIX allows */
    return f;
}

static int host_now(lua_State *L) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    lua_pushnumber(L, (lua_Number)ts.tv_sec + (lua_Number)ts.tv_nsec / 1e9);
    return 1;
}

static int host_sleep(lua_State *L) {
    lua_Number s = luaL_checknumber(L, 1);
    struct timespec ts;
    if (s <= 0)
        return 0;
    ts.tv_sec = (time_t)s;
    ts.tv_nsec = (long)((s - (lua_Number)ts.tv_sec) * 1e9);
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
    return 0;
}

static int host_require(lua_State *L) {
    const char *name = luaL_checkstring(L, 1);
    lua_CFunction opener = NULL;
    luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
    if (lua_getfield(L, -1, name) != LUA_TNIL)
        return 1;
    lua_pop(L, 1);
    if (strcmp(name, "avalara.core") == 0)
        opener = open_core;
    else if (strcmp(name, "cjson") == 0)
        opener = open_cjson;
    else if (strcmp(name, "cjson.safe") == 0)
        opener = open_cjson_safe;
    if (opener != NULL) {
        lua_pushcfunction(L, opener);
    } else if (strncmp(name, "avalara", 7) == 0 && strlen(name) < 200 && strstr(name, "..") == NULL) {
        char path[1024], mod[256];
        size_t i;
        snprintf(mod, sizeof mod, "%s", name);
        for (i = 0; mod[i]; i++)
            if (mod[i] == '.')
                mod[i] = '/';
        snprintf(path, sizeof path, "%s/%s.lua", luadir, mod);
        if (luaL_loadfile(L, path) != LUA_OK) {
            lua_pop(L, 1);
            snprintf(path, sizeof path, "%s/%s/init.lua", luadir, mod);
            if (luaL_loadfile(L, path) != LUA_OK)
                return lua_error(L);
        }
    } else {
        return luaL_error(L, "module '%s' is not available in this sandbox", name);
    }
    lua_pushstring(L, name);
    lua_call(L, 1, 1);
    if (lua_isnil(L, -1)) {
        lua_pop(L, 1);
        lua_pushboolean(L, 1);
    }
    lua_pushvalue(L, -1);
    lua_setfield(L, -3, name);
    return 1;
}

int main(int argc, char **argv) {
    lua_State *L;
    void *core, *cjson;
    int i, rc;
    if (argc < 5)
        return 2;
    setvbuf(stdout, NULL, _IOLBF, 0);
    core = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
    cjson = dlopen(argv[2], RTLD_NOW | RTLD_LOCAL);
    open_core = symbol(core, "luaopen_avalara_core");
    open_cjson = symbol(cjson, "luaopen_cjson");
    open_cjson_safe = symbol(cjson, "luaopen_cjson_safe");
    if (open_core == NULL || open_cjson == NULL) {
        printf("cannot open the modules: %s\n", dlerror());
        return 3;
    }
    luadir = argv[3];
    L = luaL_newstate();
    if (L == NULL)
        return 3;
    luaL_requiref(L, LUA_GNAME, luaopen_base, 1);
    luaL_requiref(L, LUA_STRLIBNAME, luaopen_string, 1);
    luaL_requiref(L, LUA_TABLIBNAME, luaopen_table, 1);
    luaL_requiref(L, LUA_COLIBNAME, luaopen_coroutine, 1);
    luaL_requiref(L, LUA_MATHLIBNAME, luaopen_math, 1);
    lua_settop(L, 0);
    lua_pushnil(L);
    lua_setglobal(L, "dofile");
    lua_pushnil(L);
    lua_setglobal(L, "loadfile");
    lua_register(L, "require", host_require);
    lua_register(L, "host_now", host_now);
    lua_register(L, "host_sleep", host_sleep);
    rc = luaL_loadfile(L, argv[4]);
    if (rc == LUA_OK) {
        for (i = 5; i < argc; i++)
            lua_pushstring(L, argv[i]);
        rc = lua_pcall(L, argc - 5, 0, 0);
    }
    if (rc != LUA_OK)
        printf("script error: %s\n", lua_tostring(L, -1));
    lua_close(L);
    dlclose(cjson);
    dlclose(core);
    return rc == LUA_OK ? 0 : 1;
}
