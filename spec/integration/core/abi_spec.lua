-- The plain C ABI (issue 27, item 1; include/avalara/abi.h): a C program
-- (examples/abi/call.c) built against the header and the static library
-- (make static) alone, no Lua, runs a request against the emulator over
-- libcurl and over its own socket with the request's bytes (avl_req_wire,
-- the answer fed back), gets `renew` for an unknown token with a redacted
-- message, an `argument` error for a bad URL before anything is sent, and
-- two requests at once on a libcurl multi handle of its own (avl_xfer);
-- under valgrind it leaks nothing; spec/support/abi_unit.c checks the rest without a server. The classic binding builds its requests
-- with the same code (src/transport/abi.c; request_spec.lua checks it).
local emu = require "spec.support.emulator"
local H = require "spec.support.host"

local sh = H.sh
local SECTIONS = "/api/v2/definitions/crossborder/sections"

local function quote(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

describe("the plain C ABI (avalara/abi.h)", function()
  local e, dir, prog

  setup(function()
    e = emu.start()
    dir = H.tmpdir()
    prog = dir .. "/call"
    local out, code = sh("make --no-print-directory -s static LUA=lua5.4")
    assert.equal(0, code, out)
    out, code = sh(("cc -O1 -g -Wall -Wextra -Werror -std=c99 examples/abi/call.c -Iinclude "
      .. "build/lua5.4/libavalara_core.a $(pkg-config --libs libcurl) -pthread -o %s"):format(quote(prog)))
    assert.equal(0, code, out)
  end)
  teardown(function()
    if e then e:stop() end
    if dir then H.rmdir(dir) end
  end)

  local function run(wrapper)
    local token = e:token()
    local out, code = sh(("AVL_TOKEN=%s %s%s %s %s"):format(quote(token), wrapper or "", quote(prog),
      quote(e.http_url), SECTIONS))
    return out, code, token
  end

  it("needs no Lua: the program links the ABI's objects only", function()
    local out = sh("nm " .. quote(prog) .. " | grep -c ' lua_' || true")
    assert.equal("0", out:match("%d+"))
  end)

  it("runs a request over libcurl and over its own socket with the request's bytes", function()
    local out, code, token = run()
    assert.equal(0, code, out)
    local body = e:request("GET", SECTIONS, { headers = { Authorization = "Bearer " .. token } })
    assert.matches("libcurl: ok status=200 bytes=" .. #body.body .. " json=[%[{] secret=none", out)
    assert.matches("wire: ok status=200 bytes=" .. #body.body .. " json=[%[{] secret=none", out)
  end)

  it("gives renew for a token the server does not know, its message redacted", function()
    local out = run()
    assert.matches("bad token: renew status=401 kind=oauth message=[^\n]+ secret=none", out)
    assert.is_nil(out:find("not-a-token-the-server-issued", 1, true))
  end)

  it("runs two requests at once on a libcurl multi handle of its own (avl_xfer)", function()
    local before = e:counters().requests
    local out, code, token = run()
    assert.equal(0, code, out)
    local body = e:request("GET", SECTIONS, { headers = { Authorization = "Bearer " .. token } })
    assert.matches("multi 1: ok status=200 bytes=" .. #body.body .. " json=[%[{] secret=none", out)
    assert.matches("multi 2: ok status=200 bytes=" .. #body.body .. " json=[%[{] secret=none", out)
    -- the token, then libcurl, wire, bad token, the two of the multi, and ours
    assert.equal(before + 7, e:counters().requests)
  end)

  it("refuses a bad URL before sending: kind argument", function()
    local out = run()
    assert.matches("argument: kind=argument message=avl_req_new: 'url' must be an http:// or https:// URL", out, 1, true)
  end)

  it("passes its C unit checks (spec/support/abi_unit.c: building, wire bytes, outcomes, limits, redaction)",
    function()
      local unit = dir .. "/abi_unit"
      local out, code = sh(("cc -O1 -g -Wall -Wextra -Werror -std=c99 spec/support/abi_unit.c -Iinclude "
        .. "build/lua5.4/libavalara_core.a $(pkg-config --libs libcurl) -pthread -o %s && %s"):format(quote(unit), quote(unit)))
      assert.equal(0, code, out)
      assert.matches("abi_unit: %d+ checks, 0 failed", out)
    end)

  it("leaks nothing (valgrind memcheck)", function()
    if os.getenv("SPEC_SANITIZED") == "1" or sh("command -v valgrind") == "" then
      return pending("valgrind not available")
    end
    local out, code = run("valgrind -q --leak-check=full --errors-for-leak-kinds=definite,indirect --error-exitcode=9 ")
    assert.equal(0, code, out)
    assert.matches("wire: ok status=200", out)
  end)
end)
