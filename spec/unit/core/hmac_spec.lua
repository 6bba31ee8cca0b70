-- core.hmac_sha256: HMAC-SHA256 (RFC 2104) on the core's own SHA-256, the
-- signature of webhook deliveries (avalara.webhook).
local core = require "avalara.core"

describe("core.hmac_sha256", function()
  it("matches RFC 4231's test cases", function()
    assert.equal("b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7",
      core.hmac_sha256(("\11"):rep(20), "Hi There"))
    assert.equal("5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843",
      core.hmac_sha256("Jefe", "what do ya want for nothing?"))
    assert.equal("773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe",
      core.hmac_sha256(("\170"):rep(20), ("\221"):rep(50)))
    -- a key longer than the block is hashed first
    assert.equal("60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54",
      core.hmac_sha256(("\170"):rep(131), "Test Using Larger Than Block-Size Key - Hash Key First"))
    assert.equal("9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2",
      core.hmac_sha256(("\170"):rep(131), "This is a test using a larger than block-size key and a larger than "
        .. "block-size data. The key needs to be hashed before being used by the HMAC algorithm."))
  end)

  it("hashes across block and padding boundaries (vectors from openssl dgst -hmac)", function()
    local vectors = {
      [55] = "07dd5479219fe056cf293d6d7d5ed159e7dec5ffa01e0eba9c0ec75afa47d02f",
      [56] = "55d2be456f7e6ddbc7b383b00f53a7dfa10899abc263da08864e29d78b127492",
      [63] = "c6c34b132b4ed03bc22a0e7a2fff3793fde46b945f731dd942f58eb410791e01",
      [64] = "682c373e952973690fd15b0dfdb9a8ace6da10a54fa88d84309fb701ce55b33a",
      [65] = "13acaa251d84c90c077e355a0a9824e678246d76ab1d921458bcaf63a84fd627",
      [119] = "4062bba48889c3021eebbdd1ea3b477127cdafe5a65e6e8f497f1e9b7e0bdea0",
      [120] = "8f51fd4bf02b54e658d83293e19ae1d8dc14c6b188565b97fbe663e84e728e43",
      [128] = "8fa8316429c8921b12af6b0e98d1e0dc714e38562eab5a60d56b1dd7de509b97",
      [129] = "31050120865948b2cf4c01a2037275d90fca9b608ee0e6fd91b46c28fa0531db",
      [1000] = "0f4f59ae38aea61bb833754b76a8e9ab1d15d3ae1e7b6bf56a780bef83bf39f1",
    }
    for n, mac in pairs(vectors) do
      assert.equal(mac, core.hmac_sha256("webhook-key", ("m"):rep(n)), n .. " bytes")
    end
    assert.equal("ae0c0e4a2340cf50185eb46aaa8723f4769153661612e212fb0d1fa3170c6202", core.hmac_sha256(("k"):rep(64), "abc"))
    assert.equal("ed378e5dfa30dc98814ba09b2e610d9b6af66054922ceef9480da094a3f11b2d", core.hmac_sha256(("k"):rep(65), "abc"))
    assert.equal("b613679a0814d9ec772f95d778c35fc5ff1697c493715653c6c712144292c5ad", core.hmac_sha256("", ""))
  end)

  it("takes binary keys and messages (NUL bytes included)", function()
    assert.not_equal(core.hmac_sha256("k\0a", "m"), core.hmac_sha256("k\0b", "m"))
    assert.not_equal(core.hmac_sha256("k", "m\0a"), core.hmac_sha256("k", "m\0b"))
  end)

  it("raises naming the argument", function()
    assert.has_error(function() core.hmac_sha256(1, "m") end,
      "bad argument #1 to 'hmac_sha256' (string expected, got number)")
    assert.has_error(function() core.hmac_sha256("k") end,
      "bad argument #2 to 'hmac_sha256' (string expected, got no value)")
  end)
end)
