/*
 * The few POSIX calls the Lua layer needs to keep its files private and to
 * tell whether a lock holder still runs (core.sys): lstat/stat/fstat (owner,
 * mode, type, device and inode), exclusive creation that never follows a
 * symbolic link, fsync of an open Lua file, random names, kill(pid, 0), and
 * a Ctrl-C that ends a short command at once (exit_on_signal).
 *
 * Lua's io library has none of these, and the store and the journal run
 * where luv is not loaded (OpenResty, embedded hosts): they are here, in
 * the module every user already loads. Runtime failures return
 * nil, "<path>: <strerror>", errno (luaL_fileresult's convention); wrong
 * argument types raise.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include <lualib.h> /* LUA_FILEHANDLE on Lua 5.1 and LuaJIT */

#include "lua/args.h"
#include "lua/error.h"
#include "lua/register.h"
#include "lua/sys.h"
#include "protocol/protocol.h"

#ifndef O_NOFOLLOW
#error "core.sys needs O_NOFOLLOW"
#endif
#ifndef O_CLOEXEC
#define O_CLOEXEC 0
#endif

static int fail(lua_State *L, const char *what, int err) {
    lua_pushnil(L);
    lua_pushfstring(L, "%s: %s", what, strerror(err));
    lua_pushinteger(L, err);
    return 3;
}

static const char *type_of(mode_t m) {
    if (S_ISREG(m)) return "file";
    if (S_ISDIR(m)) return "directory";
    if (S_ISLNK(m)) return "link";
    return "other";
}

/* {type, mode (permission bits, 07777), uid, gid, dev, ino, nlink, size} */
static int push_stat(lua_State *L, const struct stat *st) {
    lua_createtable(L, 0, 8);
    lua_pushstring(L, type_of(st->st_mode));
    lua_setfield(L, -2, "type");
    lua_pushinteger(L, (lua_Integer)(st->st_mode & 07777));
    lua_setfield(L, -2, "mode");
    lua_pushinteger(L, (lua_Integer)st->st_uid);
    lua_setfield(L, -2, "uid");
    lua_pushinteger(L, (lua_Integer)st->st_gid);
    lua_setfield(L, -2, "gid");
    /* device and inode numbers are only compared for equality */
    lua_pushinteger(L, (lua_Integer)st->st_dev);
    lua_setfield(L, -2, "dev");
    lua_pushinteger(L, (lua_Integer)st->st_ino);
    lua_setfield(L, -2, "ino");
    lua_pushinteger(L, (lua_Integer)st->st_nlink);
    lua_setfield(L, -2, "nlink");
    lua_pushnumber(L, (lua_Number)st->st_size);
    lua_setfield(L, -2, "size");
    return 1;
}

/* core.sys.lstat(path), core.sys.stat(path) -> info | nil, msg, errno */
static int sys_lstat(lua_State *L) {
    const char *path = avl_arg_string(L, 1, 1, "sys.lstat", NULL);
    struct stat st;
    if (lstat(path, &st) != 0) return fail(L, path, errno);
    return push_stat(L, &st);
}

static int sys_stat(lua_State *L) {
    const char *path = avl_arg_string(L, 1, 1, "sys.stat", NULL);
    struct stat st;
    if (stat(path, &st) != 0) return fail(L, path, errno);
    return push_stat(L, &st);
}

/* The FILE of an open Lua file (io.open's handle); raises otherwise. */
static FILE *lua_file(lua_State *L, int idx, const char *fn) {
#if LUA_VERSION_NUM == 501
    /* Lua 5.1's FILE ** and LuaJIT's IOFileUD both start with the FILE *,
       set to NULL when the file is closed */
    FILE **pf = avl_arg_udata(L, idx, 1, LUA_FILEHANDLE, fn);
    if (*pf == NULL) avl_arg_error(L, 1, fn, "attempt to use a closed file");
    return *pf;
#else
    luaL_Stream *p = avl_arg_udata(L, idx, 1, LUA_FILEHANDLE, fn);
    if (p->closef == NULL) avl_arg_error(L, 1, fn, "attempt to use a closed file");
    return p->f;
#endif
}

/* core.sys.fstat(file) -> info | nil, msg, errno */
static int sys_fstat(lua_State *L) {
    FILE *f = lua_file(L, 1, "sys.fstat");
    struct stat st;
    if (fstat(fileno(f), &st) != 0) return fail(L, "fstat", errno);
    return push_stat(L, &st);
}

/* core.sys.fsync(file) -> true | nil, msg, errno (flushes Lua's buffer first) */
static int sys_fsync(lua_State *L) {
    FILE *f = lua_file(L, 1, "sys.fsync");
    if (fflush(f) != 0 || fsync(fileno(f)) != 0) return fail(L, "fsync", errno);
    lua_pushboolean(L, 1);
    return 1;
}

/* core.sys.create_file(path[, mode]) -> info | nil, msg, errno: a new empty
 * file, created only if nothing (not even a dangling link) has the name,
 * and closed again. With `mode`, exactly that mode (set on the descriptor,
 * whatever the umask); without, 0666 less the umask (as io.open). */
static int sys_create_file(lua_State *L) {
    const char *path = avl_arg_string(L, 1, 1, "sys.create_file", NULL);
    int has_mode = !lua_isnoneornil(L, 2);
    lua_Integer mode = luaL_optinteger(L, 2, 0600);
    struct stat st;
    int fd, err;
    if (mode < 0 || mode > 0777) return avl_arg_error(L, 2, "sys.create_file", "mode must be 0 to 0777");
    fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, has_mode ? 0600 : 0666);
    if (fd < 0) return fail(L, path, errno);
    if ((has_mode && fchmod(fd, (mode_t)mode) != 0) || fstat(fd, &st) != 0) {
        err = errno;
        close(fd);
        unlink(path);
        return fail(L, path, err);
    }
    if (close(fd) != 0) {
        err = errno;
        unlink(path);
        return fail(L, path, err);
    }
    return push_stat(L, &st);
}

/* core.sys.create_dir(path) -> info | nil, msg, errno: a new folder, mode
 * 0700 (mkdir never follows a link at the last component: an existing
 * name, link or not, is EEXIST). */
static int sys_create_dir(lua_State *L) {
    const char *path = avl_arg_string(L, 1, 1, "sys.create_dir", NULL);
    struct stat st;
    if (mkdir(path, 0700) != 0) return fail(L, path, errno);
    if (lstat(path, &st) != 0) return fail(L, path, errno);
    return push_stat(L, &st);
}

/* core.sys.euid() -> the effective user id */
static int sys_euid(lua_State *L) {
    lua_pushinteger(L, (lua_Integer)geteuid());
    return 1;
}

/* core.sys.random_hex(n) -> 2n hex digits from the system's random source */
static int sys_random_hex(lua_State *L) {
    lua_Integer n = luaL_checkinteger(L, 1);
    unsigned char raw[32];
    char hex[65];
    int i;
    if (n < 1 || n > 32) return avl_arg_error(L, 1, "sys.random_hex", "n must be 1 to 32");
    if (avl_random_bytes(raw, (size_t)n) != 0) return fail(L, "random bytes", errno ? errno : EIO);
    for (i = 0; i < n; i++) {
        hex[2 * i] = "0123456789abcdef"[raw[i] >> 4];
        hex[2 * i + 1] = "0123456789abcdef"[raw[i] & 15];
    }
    lua_pushlstring(L, hex, (size_t)(2 * n));
    return 1;
}

/* core.sys.process_exists(pid) -> true (it runs in this PID namespace, even
 * if /proc hides it or it belongs to another user) | false (no such process
 * here) | nil, msg, errno */
static int sys_process_exists(lua_State *L) {
    lua_Integer pid = luaL_checkinteger(L, 1);
    if (pid < 1 || pid != (lua_Integer)(pid_t)pid) return avl_arg_error(L, 1, "sys.process_exists", "not a pid");
    if (kill((pid_t)pid, 0) == 0 || errno == EPERM) {
        lua_pushboolean(L, 1);
        return 1;
    }
    if (errno == ESRCH) {
        lua_pushboolean(L, 0);
        return 1;
    }
    return fail(L, "kill", errno);
}

/* What exit_on_signal's handler writes: set before the handler is installed,
 * read only inside it (write(2) and _exit(2) are async-signal-safe). */
static char signal_message[2][128];
static size_t signal_message_len[2];

static void exit_on_signal_handler(int sig) {
    int i = sig == SIGINT ? 0 : 1;
    if (signal_message_len[i] > 0) {
        ssize_t n = write(STDERR_FILENO, signal_message[i], signal_message_len[i]);
        (void)n;
    }
    _exit(128 + sig);
}

/* core.sys.exit_on_signal(name, message) -> true: from now on, SIGINT
 * ("sigint") or SIGTERM ("sigterm") writes `message` to stderr and ends the
 * process with 128 + its number, at once, wherever it is (inside libcurl or
 * a SQLite transaction too: both are safe to end as kill -9 would). For the
 * CLI's short commands; the interpreter's own Ctrl-C instead raises an
 * error that any pcall on the way may take for an ordinary failure.
 * A process-wide setting: never for a library embedded in a host. */
static int sys_exit_on_signal(lua_State *L) {
    static const char *const names[] = { "sigint", "sigterm", NULL };
    int i = luaL_checkoption(L, 1, NULL, names);
    size_t len;
    const char *message = luaL_optlstring(L, 2, "", &len);
    struct sigaction sa;
    /* The handler lives in this module, which closing the Lua state never
     * unloads (linked -z nodelete: Makefile): a signal then never jumps into
     * unmapped code. */
    if (len >= sizeof signal_message[i]) return avl_arg_error(L, 2, "sys.exit_on_signal", "message too long");
    memcpy(signal_message[i], message, len);
    signal_message_len[i] = len;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = exit_on_signal_handler;
    sigemptyset(&sa.sa_mask);
    if (sigaction(i == 0 ? SIGINT : SIGTERM, &sa, NULL) != 0) return fail(L, "sigaction", errno);
    lua_pushboolean(L, 1);
    return 1;
}

void avl_sys_open(lua_State *L, int uv) {
    static const luaL_Reg fns[] = {
        { "lstat", sys_lstat },
        { "stat", sys_stat },
        { "fstat", sys_fstat },
        { "fsync", sys_fsync },
        { "create_file", sys_create_file },
        { "create_dir", sys_create_dir },
        { "euid", sys_euid },
        { "random_hex", sys_random_hex },
        { "process_exists", sys_process_exists },
        { "exit_on_signal", sys_exit_on_signal },
        { NULL, NULL },
    };
    lua_newtable(L);
    avl_setfuncs(L, fns, uv);
    lua_setfield(L, -2, "sys");
}
