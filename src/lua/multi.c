/*
 * core.multi: exchanges that progress without blocking, for hosts with a
 * loop of their own (a game loop, an editor, an event loop) and for batches
 * that stream (docs/design.md section 8).
 *
 *   local m = core.multi{ concurrency = 16, timeout = 30 }   -- starts_per_poll = 4: a frame's budget
 *   local h = m:add{ url = ..., token = ... }     -- or m:add(exchange); returns the handle
 *   for _, done in ipairs(m:poll(0)) do ... end   -- {handle, status, body, headers} or {handle, err}
 *
 * Exchanges wait in a FIFO queue until a slot of the engine (transport/engine.c)
 * is free; poll() lets the transfers progress, starts what waits, and
 * reports what completed. An exchange in the multi is `running`: its own
 * finish/perform refuse, and a close() is deferred. The state table (one
 * registry reference) keeps the exchanges alive:
 *   state.queue[head..tail-1]   queued exchanges (nil where cancelled)
 *   state.handles[address] = exchange, for every exchange in the multi
 *   state.defaults              the options given to core.multi
 *   state.ready                 the entries of the poll under way (see below)
 *
 * Out of memory loses no result (docs/embedding.md). The exchanges that
 * finished (or could not start) wait in `finished`, a C array sized once,
 * until each one's entry is in state.ready; only then is it concluded, in a
 * protected call (a memory error there becomes that entry's `err`). A poll
 * that raises leaves both where they are, and the next poll reports them.
 *
 * Why this size: one Lua type (avalara.multi) whose queue, slot hand-off,
 * poll, cancel and close must agree on one state table; its methods are
 * short, and splitting them would share that state across files.
 */
#include <stdlib.h>
#include <string.h>

#include "lua/args.h"
#include "lua/error.h"
#include "lua/multi.h"
#include "lua/register.h"
#include "lua/request.h"
#include "protocol/protocol.h"

#define MULTI_MT "avalara.multi"
#define DEFAULT_CONCURRENCY 8
#define MAX_CONCURRENCY 256
#define MAX_SOCKETS 1024

/* An exchange out of the engine, its entry not yet reported. */
typedef struct {
    avl_exchange *x;
    int failed;
} finished;

typedef struct {
    avl_engine *engine;
    int state_ref;
    int head, tail;          /* queue indices in state.queue */
    int queued;              /* live entries in the queue */
    int closed;
    int polling;             /* poll() is under way */
    finished *finished;      /* [concurrency]: running + nfinished <= concurrency */
    int nfinished;
    int concurrency;
    int starts_per_poll;     /* transfers a poll may start (0: any number) */
    int started;             /* started by the poll under way */
} multi;

static multi *check(lua_State *L, const char *fn) {
    multi *m = avl_arg_udata(L, 1, 0, MULTI_MT, fn);
    if (m->closed)
        luaL_error(L, "attempt to use a closed multi");
    if (m->polling)
        luaL_error(L, "%s(): the multi is polling", fn);
    return m;
}

/* Pushes state[field] (state = the multi's state table). */
static void push_state(lua_State *L, const multi *m, const char *field) {
    lua_rawgeti(L, LUA_REGISTRYINDEX, m->state_ref);
    lua_getfield(L, -1, field);
    lua_remove(L, -2);
}

/* state.handles[x] = nil: x leaves the multi (idle again). */
static void forget(lua_State *L, const multi *m, avl_exchange *x) {
    push_state(L, m, "handles");
    lua_pushlightuserdata(L, x);
    lua_pushnil(L);
    lua_rawset(L, -3);
    lua_pop(L, 1);
    x->running = 0;
}

static void add_finished(multi *m, avl_exchange *x, int failed) {
    if (m->nfinished < m->concurrency) { /* always: running + nfinished <= concurrency */
        m->finished[m->nfinished].x = x;
        m->finished[m->nfinished++].failed = failed;
    }
}

/* Starts queued exchanges while slots are free (a finished exchange not yet
 * reported keeps its slot). One that cannot start (out of memory) is
 * finished at once, as failed. Nothing here allocates from Lua. */
static void fill(lua_State *L, multi *m) {
    push_state(L, m, "queue");
    while (m->queued > 0 && avl_engine_free_slots(m->engine) > m->nfinished &&
           (m->starts_per_poll == 0 || m->started < m->starts_per_poll)) {
        avl_exchange *x;
        lua_rawgeti(L, -1, m->head);
        x = lua_touserdata(L, -1);
        lua_pushnil(L);
        lua_rawseti(L, -3, m->head++);
        if (x != NULL) { /* else cancelled */
            m->queued--;
            if (avl_engine_start(m->engine, avl_pool_of(L), x->use, &x->req, &x->resp, &x->err, x) != 0)
                add_finished(m, x, 1);
            else
                m->started++; /* a start costs ~0.1-0.2 ms (TLS set-up more): a frame's budget */
        }
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
}

static void on_done(void *ctx, void *ud, int failed) {
    add_finished(ctx, ud, failed);
}

/* The results of a concluded exchange (count n, on the stack top) as the
 * entry table's fields. */
static void fill_entry(lua_State *L, const avl_exchange *x, int n, int entry) {
    int first = lua_gettop(L) - n + 1;
    if (lua_isnil(L, first)) {
        lua_pushvalue(L, first + 1);
        lua_setfield(L, entry, "err");
    } else if (strcmp(x->what, "request") == 0) {
        lua_pushvalue(L, first);
        lua_setfield(L, entry, "status");
        lua_pushvalue(L, first + 1);
        lua_setfield(L, entry, "body");
        lua_pushvalue(L, first + 2);
        lua_setfield(L, entry, "headers");
    } else if (lua_isuserdata(L, first)) {
        lua_pushvalue(L, first);
        lua_setfield(L, entry, "token");
    } else {
        lua_pushboolean(L, 1);
        lua_setfield(L, entry, "ok");
    }
}

/* conclude(entry, x, failed): x's results as the entry's fields; run
 * protected, so that a memory error there is the entry's `err`. */
static int conclude(lua_State *L) {
    avl_exchange *x = lua_touserdata(L, 2);
    int n = avl_exchange_conclude(L, x, lua_toboolean(L, 3));
    fill_entry(L, x, n, 1);
    return 0;
}

/* Reports the oldest finished exchange: its entry is made and put in
 * state.ready (these may raise: it is then still finished, for the next
 * poll), it leaves `finished` and the multi, and only then is concluded. */
static void report_next(lua_State *L, multi *m, int ready) {
    avl_exchange *x = m->finished[0].x;
    int failed = m->finished[0].failed, entry = 0;
    if (!x->close_pending) { /* else its owner closed it: no entry */
        lua_createtable(L, 0, 4);
        entry = lua_gettop(L);
        push_state(L, m, "handles");
        lua_pushlightuserdata(L, x);
        lua_rawget(L, -2);
        lua_setfield(L, entry, "handle");
        lua_pop(L, 1);
        lua_pushboolean(L, 0);
        lua_setfield(L, entry, "err"); /* the slot a memory error needs */
        lua_pushvalue(L, entry);
        lua_rawseti(L, ready, (int)lua_rawlen(L, ready) + 1);
    }
    /* from here on nothing allocates outside the protected call */
    memmove(m->finished, m->finished + 1, (size_t)--m->nfinished * sizeof *m->finished);
    forget(L, m, x);
    if (x->close_pending) {
        avl_exchange_release(L, x);
        return;
    }
    lua_pushcfunction(L, conclude);
    lua_pushvalue(L, entry);
    lua_pushlightuserdata(L, x);
    lua_pushboolean(L, failed);
    if (lua_pcall(L, 3, 0, 0) != LUA_OK) {
        lua_setfield(L, entry, "err"); /* the key is there: no allocation */
        avl_exchange_release(L, x);   /* a no-op when it concluded */
    } else {
        lua_getfield(L, entry, "err");
        if (lua_type(L, -1) == LUA_TBOOLEAN) {
            lua_pushnil(L);            /* the placeholder, unused: removed */
            lua_setfield(L, entry, "err");
        }
    }
    lua_settop(L, entry - 1);
}

/* Reports every finished exchange into state.ready, at `ready`. */
static void report_finished(lua_State *L, multi *m, int ready) {
    while (m->nfinished > 0)
        report_next(L, m, ready);
}

/* m:poll([timeout]) -> completed entries. */
static int l_poll(lua_State *L) {
    multi *m = check(L, "multi:poll");
    double timeout = 0;
    int ready;
    if (!lua_isnoneornil(L, 2)) {
        avl_arg_type(L, 2, 1, LUA_TNUMBER, "multi:poll");
        timeout = lua_tonumber(L, 2);
        if (!(timeout >= 0))
            return avl_arg_error(L, 1, "multi:poll", "seconds >= 0 expected");
    }
    lua_settop(L, 1);
    m->started = 0;
    push_state(L, m, "ready");
    ready = lua_gettop(L);
    report_finished(L, m, ready); /* left by a poll that raised */
    fill(L, m);
    if (m->nfinished > 0 || lua_rawlen(L, ready) > 0)
        timeout = 0; /* results to give already: do not wait */
    report_finished(L, m, ready); /* those that could not start */
    m->polling = 1;
    avl_engine_run(m->engine, avl_pool_of(L), timeout, on_done, m);
    m->polling = 0;
    report_finished(L, m, ready);
    fill(L, m); /* freed slots: start what waits */
    /* the list is handed over only now: a raise above keeps it for the next poll */
    lua_rawgeti(L, LUA_REGISTRYINDEX, m->state_ref);
    lua_newtable(L);
    lua_setfield(L, -2, "ready");
    lua_pop(L, 1);
    lua_pushvalue(L, ready);
    return 1;
}

/* m:add(request_table | exchange) -> handle. */
static int l_add(lua_State *L) {
    multi *m = check(L, "multi:add");
    avl_exchange *x;
    lua_settop(L, 2);
    if (lua_type(L, 2) == LUA_TTABLE) {
        /* the multi's options, then the request's own fields over them */
        lua_newtable(L);
        push_state(L, m, "defaults");
        lua_pushnil(L);
        while (lua_next(L, -2) != 0) {
            lua_pushvalue(L, -2);
            lua_insert(L, -2);
            lua_rawset(L, 3);
        }
        lua_pop(L, 1);
        lua_pushnil(L);
        while (lua_next(L, 2) != 0) {
            lua_pushvalue(L, -2);
            lua_insert(L, -2);
            lua_rawset(L, 3);
        }
        x = avl_request_prepare(L, 3, "multi:add");
    } else {
        x = avl_exchange_check(L, 2, "multi:add");
        lua_pushvalue(L, 2);
    }
    if (avl_options_lua_transport(x->use))
        return luaL_error(L, "multi:add: a 'transport' function cannot run in a multi (libcurl only: "
                             "drive the exchange with your transport instead)");
    /* a cancelled exchange may come back: start from an empty response */
    avl_response_free(&x->resp);
    avl_response_init(&x->resp);
    /* the inserts may raise (out of memory): the queue's slot is taken only
     * when both are done, and the exchange runs only then (a raise leaves it
     * idle, so its close or __gc releases it) */
    push_state(L, m, "queue");
    lua_pushvalue(L, -2);
    lua_rawseti(L, -2, m->tail);
    lua_pop(L, 1);
    push_state(L, m, "handles");
    lua_pushlightuserdata(L, x);
    lua_pushvalue(L, -3);
    lua_rawset(L, -3);
    lua_pop(L, 1);
    m->tail++;
    m->queued++;
    x->running = 1;
    return 1;
}

/* m:cancel(handle) -> true when it was queued or running (it is then
 * never reported, and idle again: close it, or add it again). */
static int l_cancel(lua_State *L) {
    multi *m = check(L, "multi:cancel");
    avl_exchange *x = avl_arg_udata(L, 2, 1, AVL_EXCHANGE_MT, "multi:cancel");
    int found = 0;
    lua_settop(L, 2);
    if (avl_engine_abort(m->engine, avl_pool_of(L), x) == 0) {
        found = 1;
    } else {
        int i;
        push_state(L, m, "queue");
        for (i = m->head; i < m->tail && !found; i++) {
            lua_rawgeti(L, -1, i);
            if (lua_touserdata(L, -1) == x) {
                lua_pushnil(L);
                lua_rawseti(L, -3, i);
                m->queued--;
                found = 1;
            }
            lua_pop(L, 1);
        }
        lua_pop(L, 1);
    }
    if (found) {
        forget(L, m, x);
        if (x->close_pending)
            avl_exchange_release(L, x);
    }
    lua_pushboolean(L, found);
    return 1;
}

static int l_pending(lua_State *L) {
    multi *m = check(L, "multi:pending");
    size_t ready;
    push_state(L, m, "ready"); /* results a poll that raised has still to give */
    ready = lua_rawlen(L, -1);
    lua_pushinteger(L, m->queued + avl_engine_running(m->engine) + m->nfinished + (lua_Integer)ready);
    return 1;
}

static int l_running(lua_State *L) {
    multi *m = check(L, "multi:running");
    lua_pushinteger(L, avl_engine_running(m->engine));
    return 1;
}

/* m:sockets() -> { {fd = n, read = bool, write = bool}, ... } */
static int l_sockets(lua_State *L) {
    multi *m = check(L, "multi:sockets");
    int fds[MAX_SOCKETS], what[MAX_SOCKETS];
    int n = avl_engine_sockets(m->engine, fds, what, MAX_SOCKETS), i;
    lua_createtable(L, n, 0);
    for (i = 0; i < n; i++) {
        lua_createtable(L, 0, 3);
        lua_pushinteger(L, fds[i]);
        lua_setfield(L, -2, "fd");
        lua_pushboolean(L, what[i] & 1);
        lua_setfield(L, -2, "read");
        lua_pushboolean(L, (what[i] & 2) != 0);
        lua_setfield(L, -2, "write");
        lua_rawseti(L, -2, i + 1);
    }
    return 1;
}

/* m:timeout() -> seconds until poll() has work anyway, or nil. */
static int l_timeout(lua_State *L) {
    multi *m = check(L, "multi:timeout");
    double t = avl_engine_timeout(m->engine);
    if ((m->queued > 0 && avl_engine_free_slots(m->engine) > m->nfinished) || m->nfinished > 0)
        t = 0;
    if (t < 0)
        lua_pushnil(L);
    else
        lua_pushnumber(L, t);
    return 1;
}

/* Aborts everything; the exchanges it held are idle again (or released,
 * when their owners closed them meanwhile). */
static void shut(lua_State *L, multi *m) {
    if (m->closed)
        return;
    m->closed = 1;
    if (m->engine != NULL)
        avl_engine_free(m->engine, avl_pool_of(L));
    m->engine = NULL;
    free(m->finished);
    m->finished = NULL;
    m->nfinished = 0;
    push_state(L, m, "handles");
    lua_pushnil(L);
    while (lua_next(L, -2) != 0) {
        avl_exchange *x = lua_touserdata(L, -1);
        x->running = 0;
        if (x->close_pending)
            avl_exchange_release(L, x);
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
    luaL_unref(L, LUA_REGISTRYINDEX, m->state_ref);
    m->state_ref = LUA_NOREF;
}

static int l_close(lua_State *L) {
    multi *m = avl_arg_udata(L, 1, 0, MULTI_MT, "multi:close");
    if (m->polling)
        return luaL_error(L, "multi:close(): the multi is polling");
    shut(L, m);
    lua_pushboolean(L, 1);
    return 1;
}

static int l_gc(lua_State *L) {
    multi *m = luaL_testudata(L, 1, MULTI_MT);
    if (m != NULL)
        shut(L, m);
    return 0;
}

static int l_tostring(lua_State *L) {
    multi *m = avl_arg_udata(L, 1, 0, MULTI_MT, "tostring");
    if (m->closed)
        lua_pushliteral(L, "avalara.multi (closed)");
    else
        lua_pushfstring(L, "avalara.multi (%d running, %d queued)", avl_engine_running(m->engine), m->queued);
    return 1;
}

/* core.multi([options]) -> multi. */
static int l_multi(lua_State *L) {
    static const char fn[] = "core.multi";
    multi *m;
    avl_options o;
    int concurrency = DEFAULT_CONCURRENCY, starts = 0;
    if (lua_isnoneornil(L, 1)) {
        lua_settop(L, 0);
        lua_newtable(L);
    }
    avl_arg_type(L, 1, 1, LUA_TTABLE, fn);
    lua_settop(L, 1);
    lua_getfield(L, 1, "concurrency");
    if (!lua_isnil(L, -1)) {
        double v = lua_type(L, -1) == LUA_TNUMBER ? lua_tonumber(L, -1) : 0;
        if (!(v >= 1))
            return luaL_error(L, "%s: 'concurrency' must be a number >= 1", fn);
        concurrency = avl_clamp_int(v, 1, MAX_CONCURRENCY);
    }
    lua_pop(L, 1);
    lua_getfield(L, 1, "starts_per_poll");
    if (!lua_isnil(L, -1)) {
        double v = lua_type(L, -1) == LUA_TNUMBER ? lua_tonumber(L, -1) : 0;
        if (!(v >= 1))
            return luaL_error(L, "%s: 'starts_per_poll' must be a number >= 1", fn);
        starts = avl_clamp_int(v, 1, MAX_CONCURRENCY);
    }
    lua_pop(L, 1);
    /* the options are checked now; each request reads them again with its own */
    avl_options_read(L, 1, &o);
    if (avl_options_lua_transport(&o)) {
        avl_options_free(L, &o);
        return luaL_error(L, "%s: a 'transport' function cannot run in a multi (libcurl only)", fn);
    }
    avl_options_free(L, &o);
    m = lua_newuserdata(L, sizeof *m);
    memset(m, 0, sizeof *m);
    m->state_ref = LUA_NOREF;
    m->closed = 1; /* until set up: a raise leaves nothing to shut */
    luaL_setmetatable(L, MULTI_MT);
    lua_createtable(L, 0, 4);
    lua_newtable(L);
    lua_setfield(L, -2, "queue");
    lua_newtable(L);
    lua_setfield(L, -2, "ready");
    lua_newtable(L);
    lua_setfield(L, -2, "handles");
    lua_newtable(L); /* defaults: a copy without the multi's own two */
    lua_pushnil(L);
    while (lua_next(L, 1) != 0) {
        if (lua_type(L, -2) == LUA_TSTRING && (strcmp(lua_tostring(L, -2), "concurrency") == 0 ||
                                               strcmp(lua_tostring(L, -2), "starts_per_poll") == 0)) {
            lua_pop(L, 1);
            continue;
        }
        lua_pushvalue(L, -2);
        lua_insert(L, -2);
        lua_rawset(L, -4);
    }
    lua_setfield(L, -2, "defaults");
    m->state_ref = luaL_ref(L, LUA_REGISTRYINDEX); /* may raise: nothing to free yet */
    m->head = m->tail = 1;
    m->closed = 0; /* from here on __gc frees what is made */
    m->concurrency = concurrency;
    m->starts_per_poll = starts;
    m->engine = avl_engine_new(concurrency);
    m->finished = malloc((size_t)concurrency * sizeof *m->finished);
    if (m->engine == NULL || m->finished == NULL)
        return luaL_error(L, "not enough memory");
    return 1;
}

void avl_multi_open(lua_State *L, int uv) {
    static const luaL_Reg methods[] = {
        { "add", l_add },
        { "poll", l_poll },
        { "cancel", l_cancel },
        { "pending", l_pending },
        { "running", l_running },
        { "sockets", l_sockets },
        { "timeout", l_timeout },
        { "close", l_close },
        { NULL, NULL }
    };
    static const luaL_Reg meta[] = {
        { "__gc", l_gc },
        { "__close", l_close },
        { "__tostring", l_tostring },
        { NULL, NULL }
    };
    static const luaL_Reg fns[] = {
        { "multi", l_multi },
        { NULL, NULL }
    };
    avl_newtype(L, MULTI_MT, meta, methods, uv);
    avl_setfuncs(L, fns, uv);
}
