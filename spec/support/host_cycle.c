/* A host that opens and closes lua_States in turn (one per level or
 * session), each requiring avalara.core and doing one grant, and prints the
 * heap in use after each (spec/integration/core/memory_spec.lua; after
 * ../shared/repro/embed/host_cycle.c).   host_cycle CPATH BASE CYCLES */
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

int main(int argc, char **argv) {
    int i, n;
    char chunk[512];
    if (argc < 4)
        return 2;
    n = atoi(argv[3]);
    snprintf(chunk, sizeof chunk,
             "local core = require 'avalara.core'\n"
             "local t = assert(core.client_credentials{ token_url = '%s/connect/token',"
             " client_id = '2000000001', client_secret = 'DEMO-LICENSE-KEY-0001' })\n"
             "t:close()", argv[2]);
    for (i = 1; i <= n; i++) {
        lua_State *L = luaL_newstate();
        struct mallinfo2 mi;
        luaL_openlibs(L);
        lua_getglobal(L, "package");
        lua_pushstring(L, argv[1]);
        lua_setfield(L, -2, "cpath");
        lua_pop(L, 1);
        if (luaL_dostring(L, chunk) != LUA_OK) {
            printf("state %d: %s\n", i, lua_tostring(L, -1));
            return 1;
        }
        lua_close(L);
        mi = mallinfo2();
        printf("state %d heap %zu\n", i, mi.uordblks);
    }
    return 0;
}
