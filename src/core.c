/*
 * avalara.core: the module's entry point. Each concept lives in its own
 * file; this one only assembles the module table.
 */
#include <curl/curl.h>

#include "core.h"
#include "version.h"

/* Built with -fvisibility=hidden: only the entry point is exported. */
__attribute__((visibility("default"))) int luaopen_avalara_core(lua_State *L);

int luaopen_avalara_core(lua_State *L) {
    lua_newtable(L);

    lua_pushliteral(L, AVALARA_VERSION);
    lua_setfield(L, -2, "version");

    lua_pushstring(L, curl_version());
    lua_setfield(L, -2, "curl_version");

    avl_errors_open(L);
    avl_transport_open(L);
    avl_request_open(L);
    avl_token_open(L);
    avl_grants_open(L);
    avl_protocol_open(L);
    return 1;
}
