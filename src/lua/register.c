/*
 * Registering functions and types with the module's upvalues (register.h).
 */
#include "lua/register.h"

void avl_setfuncs(lua_State *L, const luaL_Reg *fns, int uv) {
    int i;
    avl_checkstack(L, AVL_NUPVALUES, "avalara.core");
    for (i = 0; i < AVL_NUPVALUES; i++)
        lua_pushvalue(L, uv + i);
    luaL_setfuncs(L, fns, AVL_NUPVALUES);
}

void avl_newtype(lua_State *L, const char *tname, const luaL_Reg *meta, const luaL_Reg *methods, int uv) {
    luaL_newmetatable(L, tname);
    avl_setfuncs(L, meta, uv);
    lua_pushstring(L, tname);
    lua_setfield(L, -2, "__metatable");
    if (methods != NULL) {
        lua_newtable(L);
        avl_setfuncs(L, methods, uv);
        lua_setfield(L, -2, "__index");
    }
    lua_pop(L, 1);
}
