/*
 * The upvalues every function of the module closes over (set up once by
 * luaopen_avalara_core, core.c), so no call looks anything up in the
 * registry or `require`s (but the first encoding of a body: below):
 *
 *   AVL_UV_STATE   the state userdata: the libcurl pool (state.c)
 *   AVL_UV_ENCODE  a table whose [1] caches cjson.encode, looked up when a
 *                  body given as a table first needs it (json.c,
 *                  avl_json_encoder); decoding is json.c's own
 */
#ifndef AVALARA_UPVALUES_H
#define AVALARA_UPVALUES_H

#define AVL_UV_STATE 1
#define AVL_UV_ENCODE 2
#define AVL_NUPVALUES 2

#endif
