/*
 * avalara.core: the module's entry point. Each concept lives in its own
 * file; this one assembles the module table and the upvalues every
 * function shares (upvalues.h), and calls each binding file's avl_*_open.
 * Nothing includes this file's names: it is the top of the include graph.
 */
#include <curl/curl.h>

#include "lua/device.h"
#include "lua/error.h"
#include "lua/exchange.h"
#include "lua/grants.h"
#include "lua/multi.h"
#include "lua/protocol.h"
#include "lua/register.h"
#include "lua/request.h"
#include "lua/sys.h"
#include "lua/token.h"
#include "lua/transport.h"
#include "version.h"

/* Built with -fvisibility=hidden: only the entry point is exported
 * (AVALARA_API, in the public header include/avalara/core.h). */
#include <avalara/core.h> /* the public header, include/ (-Iinclude) */

/* "libcurl/7.88.1 OpenSSL/3.0.x zlib/1.2.13 nghttp2/1.52.0", from
 * curl_version_info as asked once per process (avl_curl_info, curl.c: each
 * call rewrites libcurl's static buffers, a data race when two threads load
 * the module). curl_version() would cost 3-9 ms at every load (it sets up
 * libldap to ask its version) and race the same way (docs/core.md). */
static void push_curl_version(lua_State *L) {
    const curl_version_info_data *v = avl_curl_info();
    luaL_Buffer b;
    if (v == NULL) {
        lua_pushliteral(L, "libcurl");
        return;
    }
    luaL_buffinit(L, &b);
    luaL_addstring(&b, "libcurl/");
    luaL_addstring(&b, v->version);
    if (v->ssl_version != NULL) {
        luaL_addchar(&b, ' ');
        luaL_addstring(&b, v->ssl_version);
    }
    if (v->libz_version != NULL) {
        luaL_addstring(&b, " zlib/");
        luaL_addstring(&b, v->libz_version);
    }
    if (v->age >= CURLVERSION_SIXTH && v->nghttp2_version != NULL) {
        luaL_addstring(&b, " nghttp2/");
        luaL_addstring(&b, v->nghttp2_version);
    }
    luaL_pushresult(&b);
}

int luaopen_avalara_core(lua_State *L) {
    int mod, uv;
    lua_newtable(L);
    mod = lua_gettop(L);
    avl_pool_push(L);                   /* AVL_UV_STATE */
    uv = lua_gettop(L);
    /* AVL_UV_ENCODE: cjson.encode, looked up when a body first needs it
     * (json.c, avl_json_encoder): opening needs neither cjson nor require */
    lua_createtable(L, 1, 0);
    lua_pushvalue(L, mod);

    lua_pushliteral(L, AVALARA_VERSION);
    lua_setfield(L, -2, "version");
    push_curl_version(L);
    lua_setfield(L, -2, "curl_version");
    lua_pushstring(L, avl_pool_user_agent(lua_touserdata(L, uv)));
    lua_setfield(L, -2, "user_agent");

    avl_error_open(L, uv);
    avl_request_open(L, uv);
    avl_token_open(L, uv);
    avl_exchange_open(L, uv);
    avl_multi_open(L, uv);
    avl_grants_open(L, uv);
    avl_protocol_open(L, uv);
    avl_device_open(L, uv);
    avl_sys_open(L, uv);
    return 1;
}
