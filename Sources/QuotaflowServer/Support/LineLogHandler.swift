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
        let merged = metadata.merging(event.metadata ?? [:]) { $1 }
        let time = Timestamp.format(SystemClock().nowMs())
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
            LogOutput.write(bytes)
        case .text:
            var text = "\(time) \(event.level.rawValue.uppercased())"
            if let id = merged[Self.requestIdKey] { text += " [\(id)]" }
            text += " \(event.message)"
            for (k, v) in merged.sorted(by: { $0.key < $1.key }) where k != Self.requestIdKey { text += " \(k)=\(v)" }
            text += "\n"
            LogOutput.write(Array(text.utf8))
        }
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
