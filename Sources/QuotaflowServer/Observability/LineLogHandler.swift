import Foundation
import Logging
import QuotaflowCore

/// Log lines on standard error, one `write(2)` each, in one of two shapes:
/// - `json`: one object per line with time, level, message, logger and metadata (`request_id` included);
/// - `text`: `time LEVEL [request_id] message key=value ...`.
public struct LineLogHandler: LogHandler {
    public enum Format: Sendable { case text, json }

    public var logLevel: Logger.Level = .info
    public var metadata: Logger.Metadata = [:]
    let label: String
    let format: Format

    public init(label: String, format: Format) {
        self.label = label
        self.format = format
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    static let requestIdKey = "hb.request.id"

    public func log(event: LogEvent) {
        LogOutput.write(line(event, time: Timestamp.format(SystemClock().nowMs())))
    }

    /// One whole line, ending in a newline. Every field is escaped, so nothing a client sends (a model
    /// name with a newline, say) can start a forged line.
    func line(_ event: LogEvent, time: String) -> [UInt8] {
        let merged = metadata.merging(event.metadata ?? [:]) { $1 }
        switch format {
        case .json:
            var fields: [(String, JSONValue)] = [
                ("time", .string(time)), ("level", .string(event.level.rawValue)), ("message", .string(event.message.description)),
                ("logger", .string(label)),
            ]
            for (k, v) in merged.sorted(by: { $0.key < $1.key }) {
                fields.append((k == Self.requestIdKey ? "request_id" : k, .string(v.description)))
            }
            var bytes = JSONWriter.bytes(.object(fields))
            bytes.append(0x0A)
            return bytes
        case .text:
            var text = "\(time) \(event.level.rawValue.uppercased())"
            if let id = merged[Self.requestIdKey] { text += " [\(Self.escape(id.description))]" }
            text += " \(Self.escape(event.message.description))"
            for (k, v) in merged.sorted(by: { $0.key < $1.key }) where k != Self.requestIdKey {
                text += " \(Self.escape(k))=\(Self.escape(v.description))"
            }
            text += "\n"
            return Array(text.utf8)
        }
    }

    /// Control characters (and the Unicode line and paragraph separators) as visible escapes.
    static func escape(_ text: String) -> String {
        guard text.unicodeScalars.contains(where: needsEscape) else { return text }
        var out = ""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where needsEscape(scalar):
                let hex = String(scalar.value, radix: 16)
                out += "\\u" + String(repeating: "0", count: max(0, 4 - hex.count)) + hex
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out
    }

    static func needsEscape(_ s: Unicode.Scalar) -> Bool {
        s.value < 0x20 || s.value == 0x7F || (0x80...0x9F).contains(s.value) || s.value == 0x2028 || s.value == 0x2029
    }
}

/// Writes whole log lines to standard error with one `write(2)` each, so lines never interleave.
enum LogOutput {
    static func write(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { buffer in
            var offset = 0
            while offset < buffer.count {
                let n = Foundation.write(2, buffer.baseAddress! + offset, buffer.count - offset)
                if n <= 0 { return }
                offset += n
            }
        }
    }
}
