/*
 * A host that embeds Lua and links avalara.core statically (libavalara_core.a,
 * include/avalara/core.h): N threads, each with its own lua_State, open the
 * module at the same moment (a barrier before the first require) and run the
 * same work: a client_credentials grant, a classification created with a
 * table body (JSON-encoded by lua-cjson, linked in too and given through
 * package.preload), read back, and the same through core.multi. Nothing is
 * loaded from disk: package.cpath is empty. docs/embedding.md.
 *
 *   make -C examples/embed [LUA=lua5.4|luajit] [SANITIZE=thread]
 *   build/lua5.4/embed/host BASE_URL [THREADS [ROUNDS]]
 *
 * BASE_URL: the emulator (`make emulator`, http://127.0.0.1:18080) or
 * Avalara's sandbox with its credentials in AVALARA_CLIENT_ID and
 * AVALARA_CLIENT_SECRET. Prints one line a thread and exits 0 when every
 * round of every thread succeeded.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

#include <avalara/core.h>

/* lua-cjson (Debian: liblua5.4-cjson.so.0, liblua5.1-cjson.so.0 for LuaJIT) */
int luaopen_cjson(lua_State *L);

#define MAX_THREADS 64

static const char *work =
    "local base, tag, id, secret, header = ...\n"
    "local core = require 'avalara.core'\n"
    "assert(core.version == header, 'core.version ' .. core.version .. ', avalara/core.h ' .. header)\n"
    "local tok = assert(core.client_credentials{ token_url = base .. '/connect/token',\n"
    "  client_id = id, client_secret = secret, scope = 'hs-code-classification' })\n"
    "local url = base .. '/api/v2/companies/1001/classifications/hs'\n"
    "local function item(code)\n"
    "  return { countryOfDestination = 'US', item = { companyId = 1001, itemCode = code,\n"
    "    description = 'porcelain coffee mug', itemGroup = 'Kitchen' } }\n"
    "end\n"
    "local st, model = core.request{ method = 'POST', url = url, token = tok, body = item('E-' .. tag) }\n"
    "assert(st, tostring(model))\n"
    "local st2, again = core.request{ url = url .. '/' .. model.id, token = tok }\n"
    "assert(st2 == 200 and again.id == model.id, tostring(again))\n"
    "local m = core.multi{ concurrency = 2, timeout = 30 }\n"
    "m:add{ method = 'POST', url = url, token = tok, body = item('M-' .. tag) }\n"
    "m:add(core.prepare_grant('client_credentials', { token_url = base .. '/connect/token',\n"
    "  client_id = id, client_secret = secret }))\n"
    "local got = 0\n"
    "while m:pending() > 0 do\n"
    "  for _, d in ipairs(m:poll(1)) do\n"
    "    assert(not d.err, tostring(d.err))\n"
    "    got = got + 1\n"
    "    if d.token then d.token:close() end\n"
    "  end\n"
    "end\n"
    "m:close()\n"
    "tok:close()\n"
    "assert(got == 2, 'multi: ' .. got .. ' of 2')\n"
    "return model.id\n";

static const char *base, *client_id, *client_secret;
static int rounds = 2;
static pthread_barrier_t barrier;

/* lua-cjson's luaopen_cjson sets a process global (its number formatting,
 * fpconv_init) each time it runs, which its encoder reads: states open it
 * in turn, and every state before any thread encodes (before the barrier).
 * The core needs neither (include/avalara/core.h). */
static pthread_mutex_t cjson_lock = PTHREAD_MUTEX_INITIALIZER;

static int open_cjson(lua_State *L) {
    int rc;
    lua_pushcfunction(L, luaopen_cjson);
    pthread_mutex_lock(&cjson_lock);
    rc = lua_pcall(L, 0, 1, 0); /* protected: a memory error must not skip the unlock */
    pthread_mutex_unlock(&cjson_lock);
    if (rc != 0)
        return lua_error(L);
    return 1;
}

static void preload(lua_State *L, const char *name, lua_CFunction open) {
    lua_getglobal(L, "package");
    lua_getfield(L, -1, "preload");
    lua_pushcfunction(L, open);
    lua_setfield(L, -2, name);
    lua_pop(L, 2);
}

/* LuaJIT's allocator sets up its process-wide parameters the first time a
 * state is made, unlocked (helgrind sees it): states are made in turn. The
 * core has no such set-up (docs/embedding.md, "Threads"). */
static pthread_mutex_t state_lock = PTHREAD_MUTEX_INITIALIZER;

static lua_State *new_state(void) {
    lua_State *L;
    pthread_mutex_lock(&state_lock);
    L = luaL_newstate();
    pthread_mutex_unlock(&state_lock);
    return L;
}

static void *run(void *arg) {
    long id = (long)arg;
    int i, failed = 0;
    lua_State *L = new_state();
    if (L == NULL) {
        fprintf(stderr, "thread %ld: no memory for a state\n", id);
        return (void *)1;
    }
    luaL_openlibs(L);
    lua_getglobal(L, "package");
    lua_pushliteral(L, "");
    lua_setfield(L, -2, "cpath"); /* no C module from disk: both are linked in */
    lua_pop(L, 1);
    preload(L, "avalara.core", luaopen_avalara_core);
    preload(L, "cjson", open_cjson);
    if (luaL_dostring(L, "require 'cjson'") != 0) {
        fprintf(stderr, "thread %ld: %s\n", id, lua_tostring(L, -1));
        failed++;
    }
    pthread_barrier_wait(&barrier); /* every thread opens the module at once */
    for (i = 0; i < rounds && !failed; i++) {
        char tag[32];
        snprintf(tag, sizeof tag, "%ld-%d", id, i);
        if (luaL_loadbuffer(L, work, strlen(work), "=work") != 0) {
            fprintf(stderr, "thread %ld: %s\n", id, lua_tostring(L, -1));
            failed++;
            break;
        }
        lua_pushstring(L, base);
        lua_pushstring(L, tag);
        lua_pushstring(L, client_id);
        lua_pushstring(L, client_secret);
        lua_pushliteral(L, AVALARA_VERSION_STRING);
        if (lua_pcall(L, 5, 1, 0) != 0) {
            fprintf(stderr, "thread %ld round %d: %s\n", id, i, lua_tostring(L, -1));
            failed++;
        }
        lua_settop(L, 0);
    }
    printf("thread %ld: %d rounds, %d failed\n", id, rounds, failed);
    lua_close(L);
    return failed ? (void *)1 : NULL;
}

int main(int argc, char **argv) {
    pthread_t threads[MAX_THREADS];
    long i, n = 4, failed = 0;
    if (argc < 2) {
        fprintf(stderr, "usage: %s BASE_URL [THREADS [ROUNDS]]\n", argv[0]);
        return 2;
    }
    base = argv[1];
    if (argc > 2)
        n = strtol(argv[2], NULL, 10);
    if (argc > 3)
        rounds = atoi(argv[3]);
    if (n < 1 || n > MAX_THREADS || rounds < 1) {
        fprintf(stderr, "%s: 1 to %d threads, at least 1 round\n", argv[0], MAX_THREADS);
        return 2;
    }
    client_id = getenv("AVALARA_CLIENT_ID") ? getenv("AVALARA_CLIENT_ID") : "2000000001";
    client_secret = getenv("AVALARA_CLIENT_SECRET") ? getenv("AVALARA_CLIENT_SECRET") : "DEMO-LICENSE-KEY-0001";
    pthread_barrier_init(&barrier, NULL, (unsigned)n);
    for (i = 0; i < n; i++)
        if (pthread_create(&threads[i], NULL, run, (void *)i) != 0) {
            fprintf(stderr, "%s: cannot start thread %ld\n", argv[0], i);
            return 1; /* the others wait at the barrier: exit ends them */
        }
    for (i = 0; i < n; i++) {
        void *r;
        pthread_join(threads[i], &r);
        failed += r != NULL;
    }
    pthread_barrier_destroy(&barrier);
    printf("avalara.core %s: %ld threads, %ld failed\n", AVALARA_VERSION_STRING, n, failed);
    return failed != 0;
}
