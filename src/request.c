/* Placeholder: filled in by the C core work (issue 3). */
#include "core.h"

void avl_request_open(lua_State *L) {
    (void)L;
}
