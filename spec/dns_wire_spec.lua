-- spec/dns_wire_spec.lua: scripts/lib/dns_wire.lua, the DNS wire-format pieces: names to
-- wire and back (with every bound a query may break), IPv4/IPv6 text, TXT strings.
local wire = require "dns_wire"

-- Wire form written as dotted labels: w("www", "example") = "\3www\7example\0".
local function w(...)
  local out = {}
  for i, l in ipairs { ... } do out[i] = string.char(#l) .. l end
  return table.concat(out) .. "\0"
end

local function hex(s)
  return (s:gsub(".", function(c) return string.format("%02x", c:byte()) end))
end

describe("dns_wire", function()
  describe("name_to_wire", function()
    it("encodes absolute and dot-less names alike, keeping case", function()
      assert.are.equal(w("www", "Example", "test"), wire.name_to_wire("www.Example.test."))
      assert.are.equal(w("www", "Example", "test"), wire.name_to_wire("www.Example.test"))
      assert.are.equal("\0", wire.name_to_wire("."))
      assert.are.equal(w("_dmarc", "a-b", "0"), wire.name_to_wire("_dmarc.a-b.0."))
    end)

    it("takes labels of 63 bytes and names of 255 bytes", function()
      local l63 = string.rep("a", 63)
      assert.are.equal(w(l63), wire.name_to_wire(l63 .. "."))
      -- 3 * 64 + 62 + 1 = 255 bytes in wire form
      local name = l63 .. "." .. l63 .. "." .. l63 .. "." .. string.rep("b", 61) .. "."
      local got = assert(wire.name_to_wire(name))
      assert.are.equal(255, #got)
    end)

    it("refuses what cannot be a name", function()
      local cases = {
        [""] = "empty name",
        [".."] = "empty label in '..'",
        ["a..b"] = "empty label in 'a..b'",
        [".a"] = "empty label in '.a'",
        [string.rep("a", 64) .. ".test"] = "label longer than 63 bytes in '"
          .. string.rep("a", 64) .. ".test'",
        ["*.example.test"] = "label '*' may hold only letters, digits, '-' and '_'",
        ["a b.test"] = "label 'a b' may hold only letters, digits, '-' and '_'",
        ["a\0b.test"] = "label 'a\0b' may hold only letters, digits, '-' and '_'",
      }
      for text, msg in pairs(cases) do
        local got, err = wire.name_to_wire(text)
        assert.is_nil(got, text)
        assert.are.equal(msg, err)
      end
      local l63 = string.rep("a", 63)
      local long = l63 .. "." .. l63 .. "." .. l63 .. "." .. string.rep("b", 62) .. "."
      assert.are.same({ nil, "name longer than 255 bytes in wire form" },
                      { wire.name_to_wire(long) })
      assert.are.same({ nil, "name longer than 255 bytes" },
                      { wire.name_to_wire(string.rep("a.", 128)) })
      assert.are.same({ nil, "name is not a string" }, { wire.name_to_wire(42) })
    end)
  end)

  describe("absolute", function()
    it("follows zone-file rules", function()
      assert.are.equal("example.test.", wire.absolute("@", "example.test."))
      assert.are.equal("www.example.test.", wire.absolute("www", "example.test."))
      assert.are.equal("ns.other.net.", wire.absolute("ns.other.net.", "example.test."))
      assert.are.equal("www.", wire.absolute("www", "."))
    end)
  end)

  describe("name_end", function()
    it("returns the position after the root label", function()
      local data = "HEADER" .. w("www", "example", "test") .. "\0\1\0\1"
      assert.are.equal(7 + 18, wire.name_end(data, 7))
      assert.are.equal(2, wire.name_end("\0", 1))
    end)

    it("refuses compression pointers, reserved label types, cut and long names", function()
      assert.are.same({ nil, "compression pointer in name" },
                      { wire.name_end("\3www\192\12", 1) })
      assert.are.same({ nil, "reserved label type" },
                      { wire.name_end("\64" .. ("a"):rep(64) .. "\0", 1) })
      assert.are.same({ nil, "reserved label type" }, { wire.name_end("\128ab\0", 1) })
      assert.are.same({ nil, "name cut short" }, { wire.name_end("\3www\7exam", 1) })
      assert.are.same({ nil, "name cut short" }, { wire.name_end("", 1) })
      assert.are.same({ nil, "name cut short" }, { wire.name_end("\3www", 1) })
      -- 128 labels of one byte: 257 bytes
      assert.are.same({ nil, "name longer than 255 bytes" },
                      { wire.name_end(("\1a"):rep(128) .. "\0", 1) })
      -- 127 labels of one byte: 255 bytes, the most there can be
      assert.are.equal(256, wire.name_end(("\1a"):rep(127) .. "\0", 1))
    end)
  end)

  describe("read_name", function()
    it("reads names as text, escaping odd bytes", function()
      assert.are.same({ "www.example.test.", 19 },
                      { wire.read_name(w("www", "example", "test"), 1) })
      assert.are.same({ ".", 2 }, { wire.read_name("\0", 1) })
      assert.are.same({ "a\\046b.\\000\\255.", 9 }, { wire.read_name("\3a.b\2\0\255\0", 1) })
    end)

    it("follows compression pointers backwards only when allowed", function()
      local data = w("example", "test") .. "\3www\192\0"
      assert.are.same({ "www.example.test.", #data + 1 }, { wire.read_name(data, 15, true) })
      assert.are.same({ nil, "compression pointer in name" }, { wire.read_name(data, 15) })
      -- a pointer to itself, and one pointing forward
      assert.are.same({ nil, "compression pointer does not point back" },
                      { wire.read_name("\192\0", 1, true) })
      assert.are.same({ nil, "compression pointer does not point back" },
                      { wire.read_name("\192\4\0\0\0", 1, true) })
      -- two pointers that take turns: the second points back to the first
      assert.are.same({ nil, "compression pointer does not point back" },
                      { wire.read_name("\1a\192\4\192\0", 5, true) })
      assert.are.same({ nil, "name cut short" }, { wire.read_name("\192", 1, true) })
    end)

    it("bounds the name behind pointers at 255 bytes", function()
      -- each step adds one label and points at the previous step: 130 labels in all
      local data, prev = "\1a\0", 1
      for _ = 1, 129 do
        local at = #data + 1
        data = data .. "\1a" .. string.pack(">I2", 0xC000 + prev - 1)
        prev = at
      end
      assert.are.same({ nil, "name longer than 255 bytes" }, { wire.read_name(data, prev, true) })
    end)
  end)

  describe("ipv4", function()
    it("reads dotted quads", function()
      assert.are.equal("\192\0\2\1", wire.ipv4("192.0.2.1"))
      assert.are.equal("\0\0\0\0", wire.ipv4("0.0.0.0"))
      assert.are.equal("\255\255\255\255", wire.ipv4("255.255.255.255"))
    end)

    it("refuses anything else", function()
      for _, s in ipairs { "256.0.0.1", "1.2.3", "1.2.3.4.5", "01.2.3.4", "1.2.3.4 ",
                           "a.b.c.d", "", "1..2.3", "-1.2.3.4", "1234.1.1.1", "::1" } do
        assert.are.same({ nil, "not an IPv4 address" }, { wire.ipv4(s) }, s)
      end
      assert.is_nil(wire.ipv4(nil))
    end)
  end)

  describe("ipv6", function()
    it("reads every RFC 4291 form", function()
      local cases = {
        ["2001:db8::1"] = "20010db8000000000000000000000001",
        ["::"] = "00000000000000000000000000000000",
        ["::1"] = "00000000000000000000000000000001",
        ["1::"] = "00010000000000000000000000000000",
        ["2001:DB8:0:0:8:800:200C:417A"] = "20010db80000000000080800200c417a",
        ["1:2:3:4:5:6:7:8"] = "00010002000300040005000600070008",
        ["1:2:3:4:5:6:7::"] = "00010002000300040005000600070000",
        ["::2:3:4:5:6:7:8"] = "00000002000300040005000600070008",
        ["fe80::1:2"] = "fe800000000000000000000000010002",
        ["::ffff:192.0.2.1"] = "00000000000000000000ffffc0000201",
        ["::192.0.2.1"] = "000000000000000000000000c0000201",
        ["1:2:3:4:5:6:1.2.3.4"] = "00010002000300040005000601020304",
        ["ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255"] = ("ff"):rep(16),
      }
      for text, want in pairs(cases) do
        local got = wire.ipv6(text)
        assert.is_string(got, text)
        assert.are.equal(want, hex(got), text)
      end
    end)

    it("refuses malformed text", function()
      for _, s in ipairs { "", ":", ":::", "1:2:3:4:5:6:7", "1:2:3:4:5:6:7:8:9",
                           "1::2::3", "12345::", "g::1", ":1::", "1::2:", "1:2:3:4:5:6:7:8::",
                           "::1:2:3:4:5:6:7:8", "1.2.3.4", "::1.2.3", "::256.1.1.1",
                           "1:2:3:4:5:6:7:1.2.3.4", "fe80::1%eth0", "::1 ", " ::1",
                           "1:2:3:4:5:6:7::8", "::ffff:1.2.3.4:5",
                           string.rep("0", 46) } do
        assert.are.same({ nil, "not an IPv6 address" }, { wire.ipv6(s) }, s)
      end
    end)
  end)

  describe("char_strings", function()
    it("splits strings longer than 255 bytes", function()
      assert.are.equal("\0", wire.char_strings(""))
      assert.are.equal("\5hello", wire.char_strings("hello"))
      local s = string.rep("x", 255) .. string.rep("y", 256)
      assert.are.equal("\255" .. string.rep("x", 255) .. "\255" .. string.rep("y", 255)
                       .. "\1y", wire.char_strings(s))
    end)
  end)
end)
