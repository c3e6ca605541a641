import Foundation
import Logging
import QuotaflowCore

/// One JSON object per line: time, level, message, label and metadata (including the request id).
public struct JSONLogHandler: LogHandler {
    public var logLevel: Logger.Level = .info
    public var metadata: Logger.Metadata = [:]
    let label: String

    public init(label: String) { self.label = label }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        let level = event.level
        let message = event.message
        let extra = event.metadata
        var fields: [(String, JSONValue)] = [
            ("time", .string(Timestamp.format(SystemClock().nowMs()))), ("level", .string(level.rawValue)), ("message", .string(message.description)),
            ("logger", .string(label)),
        ]
        let merged = metadata.merging(extra ?? [:]) { $1 }
        for (k, v) in merged.sorted(by: { $0.key < $1.key }) {
            fields.append((k == "hb.request.id" ? "request_id" : k, .string(v.description)))
        }
        var bytes = JSONWriter.bytes(.object(fields))
        bytes.append(0x0A)
        LogOutput.write(bytes)
    }
}

/// Text lines: `time level [request_id] message key=value`.
public struct TextLogHandler: LogHandler {
    public var logLevel: Logger.Level = .info
    public var metadata: Logger.Metadata = [:]
    let label: String

    public init(label: String) { self.label = label }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        let level = event.level
        let message = event.message
        let extra = event.metadata
        let merged = metadata.merging(extra ?? [:]) { $1 }
        var text = "\(Timestamp.format(SystemClock().nowMs())) \(level.rawValue.uppercased())"
        if let id = merged["hb.request.id"] { text += " [\(id)]" }
        text += " \(message)"
        for (k, v) in merged.sorted(by: { $0.key < $1.key }) where k != "hb.request.id" { text += " \(k)=\(v)" }
        text += "\n"
        LogOutput.write(Array(text.utf8))
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
