/// AWS's binary event-stream framing (`application/vnd.amazon.eventstream`), as Bedrock streams
/// answers: each message is a prelude (total length, headers length, the prelude's CRC32), headers,
/// a payload and the CRC32 of everything before it. Both CRCs are checked; a message that fails
/// either is an error, never passed on.
public enum EventStream {
    public struct Message: Sendable, Equatable {
        public var headers: [String: String]
        public var payload: [UInt8]

        public init(headers: [String: String], payload: [UInt8]) {
            self.headers = headers
            self.payload = payload
        }
    }

    public enum DecodeError: Error, Equatable, CustomStringConvertible {
        case preludeCRC, messageCRC, tooLarge, malformedHeaders

        public var description: String {
            switch self {
            case .preludeCRC: return "an event-stream prelude failed its CRC"
            case .messageCRC: return "an event-stream message failed its CRC"
            case .tooLarge: return "an event-stream message is larger than allowed"
            case .malformedHeaders: return "an event-stream message has malformed headers"
            }
        }
    }

    static let maxMessage = 24 * 1024 * 1024 + 128 * 1024 + 16

    /// Splits a byte stream into messages as bytes arrive.
    public struct Decoder: Sendable {
        var buffer: [UInt8] = []

        public init() {}

        /// Appends bytes and returns every complete message; a partial one waits for more.
        public mutating func feed(_ bytes: some Sequence<UInt8>) throws(DecodeError) -> [Message] {
            buffer.append(contentsOf: bytes)
            var out: [Message] = []
            var start = 0
            while buffer.count - start >= 12 {
                let total = Int(EventStream.uint32(buffer, start))
                let headersLength = Int(EventStream.uint32(buffer, start + 4))
                guard CRC32.checksum(buffer[start..<(start + 8)]) == EventStream.uint32(buffer, start + 8) else { throw .preludeCRC }
                guard total >= 16 + headersLength, total <= EventStream.maxMessage else { throw .tooLarge }
                guard buffer.count - start >= total else { break }
                let end = start + total
                guard CRC32.checksum(buffer[start..<(end - 4)]) == EventStream.uint32(buffer, end - 4) else { throw .messageCRC }
                let headers = try EventStream.headers(buffer[(start + 12)..<(start + 12 + headersLength)])
                out.append(Message(headers: headers, payload: Array(buffer[(start + 12 + headersLength)..<(end - 4)])))
                start = end
            }
            if start > 0 { buffer.removeFirst(start) }
            return out
        }

        /// Bytes received that do not yet make a whole message.
        public var pending: Int { buffer.count }
    }

    static func uint32(_ b: [UInt8], _ i: Int) -> UInt32 {
        UInt32(b[i]) << 24 | UInt32(b[i + 1]) << 16 | UInt32(b[i + 2]) << 8 | UInt32(b[i + 3])
    }

    /// Headers: name length, name, type, value. Strings (7) and byte arrays (6) carry a 16-bit length;
    /// the other types have fixed sizes. Values other than strings are kept as their hex.
    static func headers(_ slice: ArraySlice<UInt8>) throws(DecodeError) -> [String: String] {
        let b = Array(slice)
        var i = 0
        var out: [String: String] = [:]
        while i < b.count {
            let nameLength = Int(b[i])
            i += 1
            guard i + nameLength < b.count else { throw .malformedHeaders }
            let name = String(decoding: b[i..<(i + nameLength)], as: UTF8.self)
            i += nameLength
            let type = b[i]
            i += 1
            let size: Int
            switch type {
            case 0, 1: size = 0
            case 2: size = 1
            case 3: size = 2
            case 4: size = 4
            case 5, 8: size = 8
            case 9: size = 16
            case 6, 7:
                guard i + 2 <= b.count else { throw .malformedHeaders }
                let length = Int(b[i]) << 8 | Int(b[i + 1])
                i += 2
                guard i + length <= b.count else { throw .malformedHeaders }
                let bytes = b[i..<(i + length)]
                out[name] = type == 7 ? String(decoding: bytes, as: UTF8.self) : SigV4.hex(bytes)
                i += length
                continue
            default:
                throw .malformedHeaders
            }
            guard i + size <= b.count else { throw .malformedHeaders }
            out[name] = type == 0 ? "true" : type == 1 ? "false" : SigV4.hex(b[i..<(i + size)])
            i += size
        }
        return out
    }

    /// One message with string headers (for tests and stubs).
    public static func encode(headers: [(String, String)], payload: [UInt8]) -> [UInt8] {
        var h: [UInt8] = []
        for (name, value) in headers {
            let n = Array(name.utf8)
            let v = Array(value.utf8)
            h.append(UInt8(n.count))
            h += n
            h.append(7)
            h += [UInt8(v.count >> 8), UInt8(v.count & 0xff)]
            h += v
        }
        let total = 16 + h.count + payload.count
        func be(_ x: UInt32) -> [UInt8] { [UInt8(x >> 24), UInt8(x >> 16 & 0xff), UInt8(x >> 8 & 0xff), UInt8(x & 0xff)] }
        var out = be(UInt32(total)) + be(UInt32(h.count))
        out += be(CRC32.checksum(out[...]))
        out += h + payload
        out += be(CRC32.checksum(out[...]))
        return out
    }
}

/// CRC-32 (IEEE 802.3, the zlib polynomial), table-driven.
public enum CRC32 {
    static let table: [UInt32] = (0..<256).map { n in
        var c = UInt32(n)
        for _ in 0..<8 { c = c & 1 == 1 ? 0xEDB8_8320 ^ (c >> 1) : c >> 1 }
        return c
    }

    public static func checksum(_ bytes: ArraySlice<UInt8>) -> UInt32 {
        var c: UInt32 = 0xFFFF_FFFF
        for b in bytes { c = table[Int((c ^ UInt32(b)) & 0xff)] ^ (c >> 8) }
        return c ^ 0xFFFF_FFFF
    }
}
