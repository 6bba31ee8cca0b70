-- Issue 20, finding 8 at the client (repro ua_crlf.lua): options that go
-- into request lines or header lines (user_agent, proxy, the URLs) are
-- refused by avalara.new, naming the option, before any request; values a
-- call carries are refused with nil, err by the core
-- (spec/integration/core/header_injection_security_spec.lua).
local avalara = require "avalara"
local H = require "spec.support.client"

local function new(extra)
  local o = { account_id = H.ACCOUNT, license_key = H.KEY, company_id = H.COMPANY, environment = "local",
    emulator_url = "http://127.0.0.1:1" }
  for k, v in pairs(extra) do o[k] = v end
  return avalara.new(o)
end

describe("avalara.new refuses options that would add request lines (issue 20, finding 8)", function()
  it("user_agent with CR, LF or another control character (ua_crlf.lua)", function()
    for _, v in ipairs { "myapp/1.0\r\nX-Injected: yes\r\nHost: evil.example", "a\nb", "a\rb", "a\0b", "a\127" } do
      local ok, err = pcall(new, { user_agent = v })
      assert.is_false(ok)
      assert.truthy(tostring(err):find("avalara.new: 'user_agent' has a wrong type or value", 1, true), tostring(err))
    end
    assert.truthy(tostring(select(2, pcall(new, { user_agent = "a\nb" }))):find("control characters", 1, true))
    assert.is_table(new { user_agent = "myapp/1.0 (+https://example.com)" })
  end)

  it("proxy with a space or a control character", function()
    for _, v in ipairs { "http://127.0.0.1:3128\r\nX: y", "http://127.0.0.1:3128 x" } do
      local ok, err = pcall(new, { proxy = v })
      assert.is_false(ok)
      assert.truthy(tostring(err):find("'proxy' has a wrong type or value", 1, true), tostring(err))
    end
  end)

  it("token_url, api_base, items_base and emulator_url with a space or a control character", function()
    for _, name in ipairs { "token_url", "api_base", "items_base", "emulator_url" } do
      for _, bad in ipairs { "http://127.0.0.1:1/a\r\nX-Injected: yes", "http://127.0.0.1:1/a b", "http://127.0.0.1:1/\t" } do
        local ok, err = pcall(new, { [name] = bad })
        assert.is_false(ok)
        assert.truthy(tostring(err):find("'" .. name .. "' must not contain spaces or control characters", 1, true),
          name .. ": " .. tostring(err))
      end
    end
  end)
end)
