/*
 * The upvalues every function of the module closes over (set up once by
 * luaopen_avalara_core, core.c), so no call looks anything up in the
 * registry or `require`s:
 *
 *   AVL_UV_STATE   the state userdata: the libcurl pool (state.c)
 *   AVL_UV_ENCODE  cjson.encode (bodies given as tables; decoding is json.c's)
 */
#ifndef AVALARA_UPVALUES_H
#define AVALARA_UPVALUES_H

#define AVL_UV_STATE 1
#define AVL_UV_ENCODE 2
#define AVL_NUPVALUES 2

#endif
