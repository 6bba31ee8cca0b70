/* Placeholder: filled in by the C core work (issue 3). */
#include "core.h"

void avl_token_open(lua_State *L) {
    (void)L;
}
