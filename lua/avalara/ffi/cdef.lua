--- The declarations of include/avalara/abi.h for LuaJIT's `ffi.cdef`, and
-- the loader of the library they live in (the SAME avalara/core.so the
-- classic binding is: its avl_* symbols are exported). Plain data plus one
-- function, so this file loads under any Lua: spec/unit/core/ffi_cdef_spec.lua
-- compares CDEF with the header after the same normalising (comments,
-- AVALARA_API, white space), and the struct layouts with a C program's.
--
--    local abi, why = require("avalara.ffi.cdef").load()   -- { ffi, C, VERSION, path } or nil, reason
--    local abi = require "avalara.ffi.abi"                  -- the same table, or false
-- @module avalara.ffi.cdef

local M = {}

--- AVL_ABI_VERSION of the header CDEF was written from.
M.VERSION = 2

--- AVL_ERR_BODY_MAX: the most bytes of a response body an avl_err keeps.
M.ERR_BODY_MAX = 4096

--- The declarations (the header's, between `extern "C" {` and `}`).
M.CDEF = [[
typedef struct avl_req avl_req;
typedef struct avl_resp avl_resp;
typedef struct avl_client avl_client;
typedef struct {
    const char *method;
    const char *url;
    size_t url_len;
    const char *token;
    size_t token_len;
    const char *authorization;
    size_t authorization_len;
    const char *const *headers;
    const char *body;
    size_t body_len;
    double timeout;
    double connect_timeout;
    size_t max_body;
    int allow_http;
    int insecure;
    const char *cafile;
    const char *capath;
    const char *proxy;
    const char *user_agent;
} avl_req_spec;
typedef struct {
    const char *kind;
    int status;
    int number;
    int retryable;
    int needs_refresh;
    double retry_after;
    char code[128];
    char message[512];
    char request_id[128];
    char error_description[512];
    char error_uri[256];
    int has_body;
    size_t body_len;
    char body[AVL_ERR_BODY_MAX + 1];
} avl_err;
typedef enum {
    AVL_OK = 0,
    AVL_RETRY = 1,
    AVL_RENEW = 2,
    AVL_ERROR = 3
} avl_verdict;
typedef struct {
    avl_verdict verdict;
    int status;
    const char *body;
    size_t body_len;
    avl_err err;
} avl_result;
int avl_abi_version(void);
avl_req *avl_req_new(const avl_req_spec *spec, avl_err *err);
void avl_req_free(avl_req *req);
int avl_req_header(avl_req *req, const char *name, const char *value, size_t n, avl_err *err);
int avl_req_check(const avl_req *req, avl_err *err);
const char *avl_req_method(const avl_req *req);
const char *avl_req_url(const avl_req *req);
size_t avl_req_header_count(const avl_req *req);
const char *avl_req_header_line(const avl_req *req, size_t i);
const char *avl_req_body(const avl_req *req, size_t *n);
double avl_req_timeout(const avl_req *req);
int avl_req_wire(const avl_req *req, char **out, size_t *n, avl_err *err);
void avl_bytes_free(char *bytes, size_t n);
avl_resp *avl_resp_new(const avl_req *req);
void avl_resp_free(avl_resp *resp);
void avl_resp_status(avl_resp *resp, int status);
int avl_resp_header(avl_resp *resp, const char *name, size_t nl, const char *value, size_t vl);
int avl_resp_body(avl_resp *resp, const char *p, size_t n);
void avl_resp_fail(avl_resp *resp, const char *kind, const char *message, size_t n);
int avl_resp_get_status(const avl_resp *resp);
const char *avl_resp_headers(const avl_resp *resp, size_t *n);
avl_verdict avl_result_of(const avl_req *req, const avl_resp *resp, avl_result *out);
void avl_result_decode_failed(const avl_req *req, const avl_resp *resp, const char *reason,
                                          avl_result *out);
avl_client *avl_client_new(const char *host, avl_err *err);
void avl_client_free(avl_client *c);
avl_verdict avl_client_perform(avl_client *c, const avl_req *req, avl_resp *resp, avl_result *out);
typedef struct avl_xfer avl_xfer;
avl_xfer *avl_xfer_new(avl_client *c, const avl_req *req, avl_resp *resp, avl_err *err);
void *avl_xfer_easy(avl_xfer *t);
void avl_xfer_done(avl_xfer *t, int curl_code);
void avl_xfer_free(avl_xfer *t);
]]

local loaded, reason

local function load()
  if type(jit) ~= "table" then return nil, "the FFI binding needs LuaJIT (this is " .. _VERSION .. ")" end
  local ok, ffi = pcall(require, "ffi")
  if not ok then return nil, "the FFI binding needs LuaJIT's ffi module: " .. tostring(ffi) end
  if type(package) ~= "table" or not package.searchpath then return nil, "no package.searchpath here" end
  local path = package.searchpath("avalara.core", package.cpath)
  if not path then return nil, "avalara/core.so is not on package.cpath" end
  -- once per state: a second ffi.cdef of the same typedefs raises
  if not pcall(ffi.typeof, "avl_result") then
    local text = M.CDEF:gsub("AVL_ERR_BODY_MAX %+ 1", tostring(M.ERR_BODY_MAX + 1))
    local okc, why = pcall(ffi.cdef, text)
    if not okc then return nil, "ffi.cdef of avalara/abi.h failed: " .. tostring(why) end
  end
  local okl, lib = pcall(ffi.load, path)
  if not okl then return nil, "ffi.load of " .. path .. " failed: " .. tostring(lib) end
  local okf, why = pcall(function() return lib.avl_client_perform, lib.avl_abi_version end)
  if not okf then return nil, path .. " lacks the C ABI's symbols: " .. tostring(why) end
  local built = lib.avl_abi_version()
  if built ~= M.VERSION then
    return nil, ("%s has C ABI version %d, this cdef is version %d"):format(path, built, M.VERSION)
  end
  return { ffi = ffi, C = lib, VERSION = M.VERSION, path = path }
end

--- The FFI view of the core, made once per state.
-- @treturn table `{ffi = ffi, C = the library, VERSION = n, path = its file}`, or nil, reason
-- (not LuaJIT, no core.so on package.cpath, symbols missing, another AVL_ABI_VERSION)
function M.load()
  if loaded == nil and reason == nil then loaded, reason = load() end
  return loaded, reason
end

return M
