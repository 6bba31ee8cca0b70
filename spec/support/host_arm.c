/* A Lua 5.4 (or LuaJIT) host whose allocator a script can arm
 * (spec/integration/core/memory_spec.lua, oom_sweep_spec.lua; after
 * ../shared/repro/embed/host_arm.c): arm(n [, w])
 * makes the (n+1)-th growing allocation from now on fail, and every one
 * after it (or only w of them), until disarm().
 *   host_arm CPATH PATH SCRIPT [args...]  ->  exit 0 when the script ran */
#include <stdio.h>
#include <stdlib.h>

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

static long count, fail_after = -1, width = -1;

static void *alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
    (void)ud;
    if (nsize == 0) {
        free(ptr);
        return NULL;
    }
    if (fail_after >= 0 && nsize > (ptr != NULL ? osize : 0)) {
        long c = count++;
        if (c >= fail_after && (width < 0 || c < fail_after + width))
            return NULL;
    }
    return realloc(ptr, nsize);
}

static int l_arm(lua_State *L) {
    count = 0;
    fail_after = (long)luaL_checkinteger(L, 1);
    width = (long)luaL_optinteger(L, 2, -1);
    return 0;
}

static int l_disarm(lua_State *L) {
    (void)L;
    fail_after = -1;
    return 0;
}

int main(int argc, char **argv) {
    lua_State *L;
    int i, rc;
    if (argc < 4)
        return 2;
    setvbuf(stdout, NULL, _IOLBF, 0);
    L = lua_newstate(alloc, NULL);
    if (L == NULL)
        return 3;
    luaL_openlibs(L);
    lua_getglobal(L, "package");
    lua_pushstring(L, argv[1]);
    lua_setfield(L, -2, "cpath");
    lua_pushstring(L, argv[2]);
    lua_setfield(L, -2, "path");
    lua_pop(L, 1);
    lua_register(L, "arm", l_arm);
    lua_register(L, "disarm", l_disarm);
    rc = luaL_loadfile(L, argv[3]);
    if (rc == LUA_OK) {
        for (i = 4; i < argc; i++)
            lua_pushstring(L, argv[i]);
        rc = lua_pcall(L, argc - 4, 0, 0);
    }
    if (rc != LUA_OK)
        printf("script error: %s\n", lua_tostring(L, -1));
    lua_close(L);
    return rc == LUA_OK ? 0 : 1;
}
