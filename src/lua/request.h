/*
 * API requests from Lua tables: core.request, core.prepare_request,
 * core.request_many, and the requests core.multi adds.
 */
#ifndef AVALARA_REQUEST_H
#define AVALARA_REQUEST_H

#include "lua/exchange.h"

/* Pushes the exchange for the request table at idx (core.request's
 * arguments: method, url, token, body, headers and the transport options).
 * Raises on bad input, before any traffic, naming fn and the field. */
avl_exchange *avl_request_prepare(lua_State *L, int idx, const char *fn);

/* Registers core.request, core.request_many, core.prepare_request, core.transport_stats. */
void avl_request_open(lua_State *L, int uv);

#endif
