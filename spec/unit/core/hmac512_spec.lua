-- core.hmac_sha512: HMAC-SHA512 (RFC 2104) on the core's own SHA-512 (FIPS
-- 180-4), one of the two algorithms of Avalara's published body-signature
-- webhook scheme (avalara.webhook, scheme "body").
local core = require "avalara.core"

describe("core.hmac_sha512", function()
  it("matches RFC 4231's test cases 1 to 7", function()
    assert.equal("87aa7cdea5ef619d4ff0b4241a1d6cb02379f4e2ce4ec2787ad0b30545e17cde"
      .. "daa833b7d6b8a702038b274eaea3f4e4be9d914eeb61f1702e696c203a126854",
      core.hmac_sha512(("\11"):rep(20), "Hi There"))
    assert.equal("164b7a7bfcf819e2e395fbe73b56e0a387bd64222e831fd610270cd7ea250554"
      .. "9758bf75c05a994a6d034f65f8f0e6fdcaeab1a34d4a6b4b636e070a38bce737",
      core.hmac_sha512("Jefe", "what do ya want for nothing?"))
    assert.equal("fa73b0089d56a284efb0f0756c890be9b1b5dbdd8ee81a3655f83e33b2279d39"
      .. "bf3e848279a722c806b485a47e67c807b946a337bee8942674278859e13292fb",
      core.hmac_sha512(("\170"):rep(20), ("\221"):rep(50)))
    local key4 = {}
    for i = 1, 25 do key4[i] = string.char(i) end
    assert.equal("b0ba465637458c6990e5a8c5f61d4af7e576d97ff94b872de76f8050361ee3db"
      .. "a91ca5c11aa25eb4d679275cc5788063a5f19741120c4f2de2adebeb10a298dd",
      core.hmac_sha512(table.concat(key4), ("\205"):rep(50)))
    -- test case 5 gives the first 128 bits only
    assert.equal("415fad6271580a531d4179bc891d87a6",
      core.hmac_sha512(("\12"):rep(20), "Test With Truncation"):sub(1, 32))
    -- a key longer than the 128-byte block is hashed first
    assert.equal("80b24263c7c1a3ebb71493c1dd7be8b49b46d1f41b4aeec1121b013783f8f352"
      .. "6b56d037e05f2598bd0fd2215d6a1e5295e64f73f63f0aec8b915a985d786598",
      core.hmac_sha512(("\170"):rep(131), "Test Using Larger Than Block-Size Key - Hash Key First"))
    assert.equal("e37b6a775dc87dbaa4dfa9f96e5e3ffddebd71f8867289865df5a32d20cdc944"
      .. "b6022cac3c4982b10d5eeb55c3e4de15134676fb6de0446065c97440fa8c6a58",
      core.hmac_sha512(("\170"):rep(131), "This is a test using a larger than block-size key and a larger than "
        .. "block-size data. The key needs to be hashed before being used by the HMAC algorithm."))
  end)

  it("hashes across block and padding boundaries (vectors from Python's hmac)", function()
    local vectors = {
      [111] = "24f671e2d0a9aca31d2e8d133f6a39a170dd2811456bdefa4758867ef10580e0"
        .. "c1995f969033c11eb517eaae014fdd1264d12865c725477b49d88c82ae274dd5",
      [112] = "d42364c8f598152bb787c916c991937430409996802be28ce2b437f8a2d49868"
        .. "8005b99f9595ed2d76490e4a12893e9a3437afb3eb31f22b35911bd9bef96a52",
      [113] = "8daf4ae58d0f01bc2ef74f3305661457810b057b9e6aa9efcd72d33811c6020f"
        .. "3bc4315330e3441b652331fcf8d7bc920d5ea1c860d5865524bdd1d4a8e4983d",
      [127] = "bad2e093260df9efb256dc4fd7ad677c85bd40a80bac0834510c222349a7c248"
        .. "5b064b16c7fc4463919369cd33388685e9a4c25fec19a8c7ea89366b4cb998a2",
      [128] = "85e7a5f0c0015a837229b4d8f0dc500feeeb8a4ec54e528a14a9bcb4484c3b0d"
        .. "056b7231c137e864b40925c34d2670c6b9ea5ab3e8994e7bb6a10816758ce370",
      [129] = "d804d897adbe55dec5772118611e3fb771fc90cad28cf087683baa26d163a2a7"
        .. "ab50e9b5f192efb3305b3d411fb7162e2d005fe350b2313893c0e37e05a53025",
      [239] = "30b5e0ff923cd1686091dac9361e5561bb326427cc1c132864004e0da2110459"
        .. "03d6067e983326caa0024b64b0885933499686a1f2b4e26ba0e2b0d0ee594011",
      [240] = "a3282ab0cc23871bae93d11c098b0567a2df362ebdd3dc74218848bc3c11ff9f"
        .. "9aade0fac6f4e0443051d90a81657cfc26fd8db04331993feda55e95d61eb496",
      [255] = "a0a962de6310f6503be7307c57e8ba477fc958095b2bbd50fb8ce13f6d096047"
        .. "a420058d1d0ac17124a35e58665dee1786800526c42a69aad7ad6be760a94d14",
      [256] = "88d188abce4f864714e3d60d2e64777e847f0b907154c83c4730c7ff93137a7c"
        .. "365bb02accef6032d01f5b6c14d37633bc1d23633b781175c60bbb6496823c42",
      [257] = "cc81a46d9dfac7415bbbc17fb13db131d88a78bddf7ea37822e2f4c0b87d8049"
        .. "ce8054197e0165762a17ee142e97532db471c7b261c2c76358d9a369949836b5",
      [1000] = "4a86e6a9c47e0a77c7c5ffa50c31a624f2f59440b10d95afd0bf0fe9b919cc73"
        .. "8a6a698f2c0b57238b66b6d2b301282d04a827843c6ebe0446907df2ef17379d",
    }
    for n, mac in pairs(vectors) do
      assert.equal(mac, core.hmac_sha512("webhook-key", ("m"):rep(n)), n .. " bytes")
    end
    assert.equal("b3327a783059e7fa5af7b4836f7b7d3a9403e96a2cb5fd4dd50a78b3eb9b4e71"
        .. "111fc2286d58ea8f997d4271e709ae184d7d825cbab47c392970b4d84190b9c3",
      core.hmac_sha512(("k"):rep(128), "abc"))
    assert.equal("a1486b47baffa36173ff9d14c6be4ad40a33f1bbd1a226fdf75b884fe5680405"
        .. "6571f40130c8aa35001e15a5cbfcd3f8be6c1fc971cb31e0180eb64670e6626c",
      core.hmac_sha512(("k"):rep(129), "abc"))
    assert.equal("b936cee86c9f87aa5d3c6f2e84cb5a4239a5fe50480a6ec66b70ab5b1f4ac673"
        .. "0c6c515421b327ec1d69402e53dfb49ad7381eb067b338fd7b0cb22247225d47",
      core.hmac_sha512("", ""))
  end)

  it("takes binary keys and messages (NUL bytes included)", function()
    assert.not_equal(core.hmac_sha512("k\0a", "m"), core.hmac_sha512("k\0b", "m"))
    assert.not_equal(core.hmac_sha512("k", "m\0a"), core.hmac_sha512("k", "m\0b"))
  end)

  it("raises naming the argument", function()
    assert.has_error(function() core.hmac_sha512(1, "m") end,
      "bad argument #1 to 'hmac_sha512' (string expected, got number)")
    assert.has_error(function() core.hmac_sha512("k") end,
      "bad argument #2 to 'hmac_sha512' (string expected, got no value)")
  end)
end)
