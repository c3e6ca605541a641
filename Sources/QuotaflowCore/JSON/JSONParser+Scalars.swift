/// Strings and numbers: the byte-level scanners of `JSONParser`.
extension JSONParser {
    /// Scans a string starting at the opening quote. Returns the byte count of its raw content
    /// and whether it contains escapes; leaves `index` after the closing quote.
    mutating func scanString() throws(JSONSyntaxError) -> (start: Int, end: Int, escaped: Bool) {
        index += 1
        let start = index
        var escaped = false
        while index < bytes.count {
            let byte = bytes[index]
            if byte == UInt8(ascii: "\"") {
                let end = index
                index += 1
                return (start, end, escaped)
            }
            if byte == UInt8(ascii: "\\") {
                escaped = true
                index += 2
                continue
            }
            if byte < 0x20 { throw error("control character in string") }
            index += 1
        }
        throw error("unterminated string")
    }

    mutating func parseString() throws(JSONSyntaxError) -> String {
        let stringStart = index
        let (start, end, escaped) = try scanString()
        let raw = UnsafeRawBufferPointer(rebasing: bytes[start..<end])
        if !escaped {
            guard let s = String(validating: raw, as: UTF8.self) else {
                throw JSONSyntaxError(message: "invalid UTF-8 in string", offset: stringStart)
            }
            return s
        }
        var out: [UInt8] = []
        out.reserveCapacity(end - start)
        var i = start
        while i < end {
            let byte = bytes[i]
            guard byte == UInt8(ascii: "\\") else {
                out.append(byte)
                i += 1
                continue
            }
            guard i + 1 < end else { throw JSONSyntaxError(message: "invalid escape", offset: i) }
            let esc = bytes[i + 1]
            i += 2
            switch esc {
            case UInt8(ascii: "\""): out.append(0x22)
            case UInt8(ascii: "\\"): out.append(0x5C)
            case UInt8(ascii: "/"): out.append(0x2F)
            case UInt8(ascii: "b"): out.append(0x08)
            case UInt8(ascii: "f"): out.append(0x0C)
            case UInt8(ascii: "n"): out.append(0x0A)
            case UInt8(ascii: "r"): out.append(0x0D)
            case UInt8(ascii: "t"): out.append(0x09)
            case UInt8(ascii: "u"):
                var scalar = try hex4(at: i)
                i += 4
                if (0xD800...0xDBFF).contains(scalar) {
                    guard i + 6 <= end, bytes[i] == UInt8(ascii: "\\"), bytes[i + 1] == UInt8(ascii: "u") else {
                        throw JSONSyntaxError(message: "unpaired surrogate in string", offset: i)
                    }
                    let low = try hex4(at: i + 2)
                    guard (0xDC00...0xDFFF).contains(low) else {
                        throw JSONSyntaxError(message: "unpaired surrogate in string", offset: i)
                    }
                    i += 6
                    scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                } else if (0xDC00...0xDFFF).contains(scalar) {
                    throw JSONSyntaxError(message: "unpaired surrogate in string", offset: i)
                }
                guard let unicode = Unicode.Scalar(scalar) else {
                    throw JSONSyntaxError(message: "invalid unicode escape", offset: i)
                }
                out.append(contentsOf: Array(String(Character(unicode)).utf8))
            default:
                throw JSONSyntaxError(message: "invalid escape '\\\(Self.printable(esc))'", offset: i - 1)
            }
        }
        guard let s = String(validating: out, as: UTF8.self) else {
            throw JSONSyntaxError(message: "invalid UTF-8 in string", offset: stringStart)
        }
        return s
    }

    func hex4(at position: Int) throws(JSONSyntaxError) -> UInt32 {
        guard position + 4 <= bytes.count else { throw JSONSyntaxError(message: "invalid unicode escape", offset: position) }
        var value: UInt32 = 0
        for k in 0..<4 {
            let c = bytes[position + k]
            let digit: UInt32
            switch c {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = UInt32(c - UInt8(ascii: "0"))
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = UInt32(c - UInt8(ascii: "a") + 10)
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = UInt32(c - UInt8(ascii: "A") + 10)
            default: throw JSONSyntaxError(message: "invalid unicode escape", offset: position)
            }
            value = value << 4 | digit
        }
        return value
    }

    /// Validates number syntax; returns its byte range and whether it is an integer literal.
    mutating func scanNumber() throws(JSONSyntaxError) -> (start: Int, end: Int, integer: Bool) {
        let start = index
        var integer = true
        if bytes[index] == UInt8(ascii: "-") { index += 1 }
        guard index < bytes.count, isDigit(bytes[index]) else { throw error("invalid number") }
        if bytes[index] == UInt8(ascii: "0") {
            index += 1
            if index < bytes.count, isDigit(bytes[index]) { throw error("leading zero in number") }
        } else {
            while index < bytes.count, isDigit(bytes[index]) { index += 1 }
        }
        if index < bytes.count, bytes[index] == UInt8(ascii: ".") {
            integer = false
            index += 1
            guard index < bytes.count, isDigit(bytes[index]) else { throw error("invalid number") }
            while index < bytes.count, isDigit(bytes[index]) { index += 1 }
        }
        if index < bytes.count, bytes[index] == UInt8(ascii: "e") || bytes[index] == UInt8(ascii: "E") {
            integer = false
            index += 1
            if index < bytes.count, bytes[index] == UInt8(ascii: "+") || bytes[index] == UInt8(ascii: "-") { index += 1 }
            guard index < bytes.count, isDigit(bytes[index]) else { throw error("invalid number") }
            while index < bytes.count, isDigit(bytes[index]) { index += 1 }
        }
        return (start, index, integer)
    }

    mutating func parseNumber() throws(JSONSyntaxError) -> JSONValue {
        let (start, end, integer) = try scanNumber()
        let text = String(decoding: UnsafeRawBufferPointer(rebasing: bytes[start..<end]), as: UTF8.self)
        if integer, let v = Int64(text) { return .int(v) }
        guard let d = Double(text), d.isFinite else {
            throw JSONSyntaxError(message: "number out of range", offset: start)
        }
        return .double(d)
    }

    @inline(__always) func isDigit(_ b: UInt8) -> Bool { b >= UInt8(ascii: "0") && b <= UInt8(ascii: "9") }
}
