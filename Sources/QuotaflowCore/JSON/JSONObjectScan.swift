/// One member of a top-level JSON object, located by byte range rather than parsed.
public struct JSONMember: Sendable {
    public let key: String
    /// Byte range of the value in the scanned document.
    public let valueRange: Range<Int>
    /// The first byte of the value: `{`, `[`, `"`, `t`, `f`, `n`, `-` or a digit.
    public let leadingByte: UInt8
    /// Total UTF-8 bytes inside string literals within the value (keys excluded).
    public let stringBytes: Int
    /// Number of objects inside the value (the value itself included), a rough message count.
    public let objectCount: Int

    public var isString: Bool { leadingByte == UInt8(ascii: "\"") }
    public var isObject: Bool { leadingByte == UInt8(ascii: "{") }
    public var isArray: Bool { leadingByte == UInt8(ascii: "[") }
    public var isNull: Bool { leadingByte == UInt8(ascii: "n") }
    public var isBool: Bool { leadingByte == UInt8(ascii: "t") || leadingByte == UInt8(ascii: "f") }
    public var isNumber: Bool { leadingByte == UInt8(ascii: "-") || (leadingByte >= 0x30 && leadingByte <= 0x39) }
}

/// A validated top-level JSON object whose members are located but not materialised.
///
/// The data plane uses this to read the few fields it needs (`model`, `stream`, `max_tokens`, ...)
/// and to splice changes into the original bytes, without building a tree for the prompt.
public struct JSONObjectScan: Sendable {
    public let members: [JSONMember]
    public let byteCount: Int
    /// Offset of the closing `}` of the top-level object.
    public let closingBrace: Int

    public func member(_ key: String) -> JSONMember? { members.last(where: { $0.key == key }) }

    public enum ScanError: Error, Sendable, Equatable {
        case syntax(JSONSyntaxError)
        case notAnObject
    }

    /// Validates the whole document and locates the top-level members.
    public static func scan(
        _ buffer: UnsafeRawBufferPointer, maxDepth: Int = JSONParser.defaultMaxDepth
    ) throws(ScanError)
        -> JSONObjectScan
    {
        var parser = JSONParser(bytes: buffer, index: 0, maxDepth: maxDepth)
        do {
            parser.skipWhitespace()
            guard parser.index < buffer.count, buffer[parser.index] == UInt8(ascii: "{") else {
                if parser.index < buffer.count {
                    _ = try parser.parseValue(depth: 0)
                    throw ScanError.notAnObject
                }
                throw ScanError.syntax(parser.error("empty body"))
            }
            parser.index += 1
            var members: [JSONMember] = []
            var closing = 0
            parser.skipWhitespace()
            if parser.index < buffer.count, buffer[parser.index] == UInt8(ascii: "}") {
                closing = parser.index
                parser.index += 1
            } else {
                while true {
                    parser.skipWhitespace()
                    guard parser.index < buffer.count, buffer[parser.index] == UInt8(ascii: "\"") else {
                        throw ScanError.syntax(parser.error("expected a string key in object"))
                    }
                    let key = try parser.parseString()
                    parser.skipWhitespace()
                    guard parser.index < buffer.count, buffer[parser.index] == UInt8(ascii: ":") else {
                        throw ScanError.syntax(parser.error("expected ':' after key"))
                    }
                    parser.index += 1
                    parser.skipWhitespace()
                    guard parser.index < buffer.count else { throw ScanError.syntax(parser.error("unexpected end of JSON")) }
                    let start = parser.index
                    let lead = buffer[start]
                    var stats = SkipStats()
                    try parser.skipValue(depth: 1, stats: &stats)
                    members.append(
                        JSONMember(
                            key: key, valueRange: start..<parser.index, leadingByte: lead,
                            stringBytes: stats.stringBytes, objectCount: stats.objects))
                    parser.skipWhitespace()
                    guard parser.index < buffer.count else { throw ScanError.syntax(parser.error("unexpected end of JSON in object")) }
                    if buffer[parser.index] == UInt8(ascii: ",") {
                        parser.index += 1
                        continue
                    }
                    if buffer[parser.index] == UInt8(ascii: "}") {
                        closing = parser.index
                        parser.index += 1
                        break
                    }
                    throw ScanError.syntax(parser.error("expected ',' or '}' in object"))
                }
            }
            parser.skipWhitespace()
            if parser.index != buffer.count {
                throw ScanError.syntax(parser.error("unexpected data after the JSON value"))
            }
            return JSONObjectScan(members: members, byteCount: buffer.count, closingBrace: closing)
        } catch let e as ScanError {
            throw e
        } catch let e as JSONSyntaxError {
            throw .syntax(e)
        } catch {
            throw .syntax(JSONSyntaxError(message: "invalid JSON", offset: 0))
        }
    }

    /// Parses one member's value into a tree (meant for small values such as `usage`).
    public static func value(of member: JSONMember, in buffer: UnsafeRawBufferPointer) -> JSONValue? {
        try? JSONParser.parse(buffer: UnsafeRawBufferPointer(rebasing: buffer[member.valueRange]))
    }
}

struct SkipStats {
    var stringBytes = 0
    var objects = 0
}

extension JSONParser {
    /// Validates and skips one value, counting string bytes and objects.
    mutating func skipValue(depth: Int, stats: inout SkipStats) throws(JSONSyntaxError) {
        guard index < bytes.count else { throw error("unexpected end of JSON") }
        switch bytes[index] {
        case UInt8(ascii: "{"):
            guard depth <= maxDepth else { throw error("JSON nested deeper than \(maxDepth) levels") }
            stats.objects += 1
            index += 1
            skipWhitespace()
            if index < bytes.count, bytes[index] == UInt8(ascii: "}") {
                index += 1
                return
            }
            while true {
                skipWhitespace()
                guard index < bytes.count, bytes[index] == UInt8(ascii: "\"") else {
                    throw error("expected a string key in object")
                }
                try validateString()
                skipWhitespace()
                guard index < bytes.count, bytes[index] == UInt8(ascii: ":") else { throw error("expected ':' after key") }
                index += 1
                skipWhitespace()
                try skipValue(depth: depth + 1, stats: &stats)
                skipWhitespace()
                guard index < bytes.count else { throw error("unexpected end of JSON in object") }
                if bytes[index] == UInt8(ascii: ",") {
                    index += 1
                    continue
                }
                if bytes[index] == UInt8(ascii: "}") {
                    index += 1
                    return
                }
                throw error("expected ',' or '}' in object")
            }
        case UInt8(ascii: "["):
            guard depth <= maxDepth else { throw error("JSON nested deeper than \(maxDepth) levels") }
            index += 1
            skipWhitespace()
            if index < bytes.count, bytes[index] == UInt8(ascii: "]") {
                index += 1
                return
            }
            while true {
                skipWhitespace()
                try skipValue(depth: depth + 1, stats: &stats)
                skipWhitespace()
                guard index < bytes.count else { throw error("unexpected end of JSON in array") }
                if bytes[index] == UInt8(ascii: ",") {
                    index += 1
                    continue
                }
                if bytes[index] == UInt8(ascii: "]") {
                    index += 1
                    return
                }
                throw error("expected ',' or ']' in array")
            }
        case UInt8(ascii: "\""):
            stats.stringBytes += try validateString()
        case UInt8(ascii: "t"): try expectLiteral("true")
        case UInt8(ascii: "f"): try expectLiteral("false")
        case UInt8(ascii: "n"): try expectLiteral("null")
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): _ = try scanNumber()
        default: throw error("unexpected character '\(Self.printable(bytes[index]))'")
        }
    }

    /// Validates a string (escapes and UTF-8) without building it; returns its raw byte length.
    @discardableResult
    mutating func validateString() throws(JSONSyntaxError) -> Int {
        let stringStart = index
        let (start, end, escaped) = try scanString()
        if escaped {
            index = stringStart
            _ = try parseString()
            return end - start
        }
        var i = start
        // Fast path for ASCII, full validation only when a high byte appears.
        while i < end, bytes[i] < 0x80 { i += 1 }
        if i < end, String(validating: UnsafeRawBufferPointer(rebasing: bytes[start..<end]), as: UTF8.self) == nil {
            throw JSONSyntaxError(message: "invalid UTF-8 in string", offset: stringStart)
        }
        return end - start
    }
}

/// Splices changes into a scanned object: replaces members' values or appends new members,
/// copying everything else byte for byte.
public struct JSONSplice {
    public var replacements: [(key: String, rawValue: [UInt8])] = []

    public init() {}

    public mutating func set(_ key: String, raw: [UInt8]) { replacements.append((key, raw)) }
    public mutating func set(_ key: String, _ value: JSONValue) { set(key, raw: JSONWriter.bytes(value)) }

    public var isEmpty: Bool { replacements.isEmpty }

    public func apply(to buffer: UnsafeRawBufferPointer, scan: JSONObjectScan) -> [UInt8] {
        var edits: [(range: Range<Int>, raw: [UInt8])] = []
        var appended: [(String, [UInt8])] = []
        for (key, raw) in replacements {
            if let member = scan.member(key) {
                edits.append((member.valueRange, raw))
            } else {
                appended.append((key, raw))
            }
        }
        edits.sort { $0.range.lowerBound < $1.range.lowerBound }
        var out: [UInt8] = []
        out.reserveCapacity(buffer.count + 64)
        var cursor = 0
        for edit in edits {
            out.append(contentsOf: UnsafeRawBufferPointer(rebasing: buffer[cursor..<edit.range.lowerBound]))
            out.append(contentsOf: edit.raw)
            cursor = edit.range.upperBound
        }
        out.append(contentsOf: UnsafeRawBufferPointer(rebasing: buffer[cursor..<scan.closingBrace]))
        var needsComma = !scan.members.isEmpty
        for (key, raw) in appended {
            if needsComma { out.append(UInt8(ascii: ",")) }
            JSONWriter.appendString(key, to: &out)
            out.append(UInt8(ascii: ":"))
            out.append(contentsOf: raw)
            needsComma = true
        }
        out.append(contentsOf: UnsafeRawBufferPointer(rebasing: buffer[scan.closingBrace..<buffer.count]))
        return out
    }
}
