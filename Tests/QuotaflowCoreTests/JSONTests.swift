import Testing

@testable import QuotaflowCore

@Suite struct JSONTests {
    func parse(_ s: String) throws -> JSONValue { try JSONParser.parse(Array(s.utf8)) }

    @Test func parsesEveryKind() throws {
        let v = try parse(#"{"a":1,"b":-2.5,"c":"x\u00e9\n","d":[true,false,null],"e":{"f":9223372036854775807}}"#)
        #expect(v["a"] == .int(1))
        #expect(v["b"] == .double(-2.5))
        #expect(v["c"] == .string("xé\n"))
        #expect(v["d"] == .array([.bool(true), .bool(false), .null]))
        #expect(v["e"]?["f"]?.int64Value == Int64.max)
    }

    @Test func surrogatePairsDecode() throws {
        #expect(try parse(#""\ud83d\ude00""#) == .string("😀"))
        #expect(throws: JSONSyntaxError.self) { try parse(#""\ud83d""#) }
    }

    @Test(arguments: [
        "", "{", "[1,]", "{\"a\":}", "01", "1.", "-", "tru", "\"abc", "{\"a\" 1}", "[1 2]", "{}x", "\"\u{01}\"", "\"\\q\"", "nul",
    ])
    func rejectsMalformed(_ text: String) {
        #expect(throws: JSONSyntaxError.self) { try parse(text) }
    }

    @Test func rejectsInvalidUTF8() {
        let bytes: [UInt8] = [0x22, 0xC3, 0x28, 0x22]
        #expect(throws: JSONSyntaxError.self) { try JSONParser.parse(bytes) }
    }

    @Test func limitsDepth() throws {
        let deep = String(repeating: "[", count: 100) + String(repeating: "]", count: 100)
        #expect(throws: JSONSyntaxError.self) { try parse(deep) }
        let ok = String(repeating: "[", count: 10) + String(repeating: "]", count: 10)
        _ = try parse(ok)
    }

    @Test func hugeNumbersBecomeDoublesOrFail() throws {
        #expect(try parse("123456789012345678901234567890").int64Value == nil)
        #expect(throws: JSONSyntaxError.self) { try parse("1e999") }
    }

    @Test func writerRoundTrips() throws {
        let v: JSONValue = ["s": "a\"b\\c\n\u{01}", "n": 5, "l": [1, "x", nil], "o": ["k": true]]
        #expect(try JSONParser.parse(JSONWriter.bytes(v)) == v)
    }

    @Test func scanLocatesMembersAndCountsText() throws {
        let text = #"{"model":"gpt-4.1","messages":[{"role":"user","content":"hello world"}],"stream":true}"#
        let bytes = Array(text.utf8)
        let scan = try bytes.withUnsafeBytes { try JSONObjectScan.scan($0) }
        #expect(scan.members.map(\.key) == ["model", "messages", "stream"])
        let messages = try #require(scan.member("messages"))
        #expect(messages.isArray)
        #expect(messages.stringBytes == "user".utf8.count + "hello world".utf8.count)
        #expect(messages.objectCount == 1)
        #expect(bytes.withUnsafeBytes { JSONObjectScan.value(of: scan.member("model")!, in: $0) } == .string("gpt-4.1"))
    }

    @Test func scanRejectsNonObjectsAndGarbage() {
        #expect(throws: JSONObjectScan.ScanError.notAnObject) { try Array("[1]".utf8).withUnsafeBytes { try JSONObjectScan.scan($0) } }
        #expect(throws: JSONObjectScan.ScanError.self) { try Array("{\"a\":1} x".utf8).withUnsafeBytes { try JSONObjectScan.scan($0) } }
    }

    @Test func spliceReplacesAndAppendsWithoutTouchingTheRest() throws {
        let text = #"{"model":"a","max_tokens":9000,"messages":[{"content":"keep me"}]}"#
        let bytes = Array(text.utf8)
        let scan = try bytes.withUnsafeBytes { try JSONObjectScan.scan($0) }
        var splice = JSONSplice()
        splice.set("max_tokens", .int(100))
        splice.set("stream_options", ["include_usage": true])
        let out = bytes.withUnsafeBytes { splice.apply(to: $0, scan: scan) }
        let v = try JSONParser.parse(out)
        #expect(v["max_tokens"] == .int(100))
        #expect(v["stream_options"]?["include_usage"] == .bool(true))
        #expect(v["messages"]?.arrayValue?.first?["content"] == .string("keep me"))
        #expect(String(decoding: out, as: UTF8.self).hasPrefix(#"{"model":"a","max_tokens":100,"messages""#))
    }

    @Test func spliceIntoEmptyObject() throws {
        let bytes = Array("{ }".utf8)
        let scan = try bytes.withUnsafeBytes { try JSONObjectScan.scan($0) }
        var splice = JSONSplice()
        splice.set("a", .int(1))
        let out = bytes.withUnsafeBytes { splice.apply(to: $0, scan: scan) }
        #expect(try JSONParser.parse(out) == ["a": 1])
    }

    @Test func mergePatch() {
        let target: JSONValue = ["a": 1, "b": ["c": 2, "d": 3], "e": "x"]
        let patched = JSONMergePatch.apply(["a": nil, "b": ["c": 5], "f": true], to: target)
        #expect(patched["a"] == nil)
        #expect(patched["b"]?["c"] == .int(5))
        #expect(patched["b"]?["d"] == .int(3))
        #expect(patched["f"] == .bool(true))
        #expect(patched["e"] == .string("x"))
    }

    @Test func fuzzedInputNeverCrashesTheParser() {
        var rng = SystemRandomNumberGenerator()
        let alphabet = Array(#"{}[]",:0123456789-+.eE tfnrul"\/bu"#.utf8) + [0xC3, 0xA9, 0xFF, 0x00]
        for _ in 0..<3000 {
            let n = Int.random(in: 0..<40, using: &rng)
            let bytes = (0..<n).map { _ in alphabet.randomElement(using: &rng)! }
            _ = try? JSONParser.parse(bytes)
            _ = try? bytes.withUnsafeBytes { try JSONObjectScan.scan($0) }
        }
    }
}
