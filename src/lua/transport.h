/*
 * The transport as Lua calls it: the options read from a Lua table
 * (options.c), the module's state userdata that holds the libcurl pool
 * (state.c), and the transports an exchange runs on (transport.c): libcurl
 * (src/transport/), or a Lua function given as the `transport` option.
 *
 * Nothing here raises while libcurl runs or while a Lua transport
 * function's answer is read: the function is called, and its answer read,
 * inside a protected call; whatever it raises becomes an error value.
 */
#ifndef AVALARA_LUA_TRANSPORT_H
#define AVALARA_LUA_TRANSPORT_H

#include "lua/compat.h"
#include "transport/transport.h"

/* ---- options.c */

/* Reads the options from the table at idx (other fields ignored): every
 * field is read once and checked before anything is copied, so a raise
 * (a wrong type, naming the option) leaves o owning nothing. */
void avl_options_read(lua_State *L, int idx, avl_options *o);
/* The same, for the fields `present` may have (fields.h: a table walked
 * once for several readers). */
void avl_options_read_from(lua_State *L, int idx, avl_options *o, unsigned long present);
/* Frees what o owns, the transport function's reference included. */
void avl_options_free(lua_State *L, avl_options *o);
/* Whether o names a Lua transport function. */
int avl_options_lua_transport(const avl_options *o);

/* ---- state.c: the state userdata (upvalue AVL_UV_STATE, upvalues.h) */

/* The state's pool. */
avl_pool *avl_pool_of(lua_State *L);
/* The state's credential sets of token strings (transport/abi.h), or NULL
 * outside the module's functions. */
struct avl_cred_cache *avl_creds_of(lua_State *L);
/* Pushes a new state userdata (pool, user agent) for luaopen; raises when
 * libcurl cannot be initialised. */
void avl_pool_push(lua_State *L);
/* core.transport_stats() -> {idle_handles = n}. */
int avl_transport_stats(lua_State *L);
/* core.abi_client() -> a userdata holding an avl_client over the state's pool. */
int avl_abi_client(lua_State *L);

/* ---- transport.c */

/* Performs one exchange: over the Lua transport function o names, else
 * libcurl. 0 with r filled (any HTTP status), or -1 with e filled. Never
 * raises: a Lua transport function runs protected, and what it raises or
 * returns is read protected too. r must be initialised. */
int avl_transport_perform(lua_State *L, avl_pool *p, const avl_options *o,
                          const avl_request *req, avl_response *r, avl_error *e);
/* Runs n exchanges on one curl multi handle, at most `concurrency` at once,
 * connections shared with the single transfers; with a Lua transport
 * function, one after the other. Never raises. */
void avl_transport_perform_many(lua_State *L, avl_pool *p, const avl_options *o, avl_transfer *items,
                                size_t n, int concurrency);

/* The transport request table a Lua function is given:
 * {method, url, headers = {Name = value}, body?, timeout}. */
void avl_push_request(lua_State *L, const avl_options *o, const avl_request *req);
/* Takes a Lua transport's answer, the values at idx and idx + 1 (response
 * | nil, err), into r or e, never raising (max_body applies). 0 or -1. */
int avl_transport_take(lua_State *L, int idx, const avl_options *o, const avl_request *req,
                       avl_response *r, avl_error *e);

/* Pushes the response headers as a Lua table, names lower-cased. */
void avl_push_headers(lua_State *L, const avl_response *r);

#endif
