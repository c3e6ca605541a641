import Foundation
import HTTPTypes
import QuotaflowCore

/// Which conversation a request belongs to, so its turns stay on one resource and the provider's
/// prompt cache stays warm: `x-quotaflow-session`, then Codex's `session_id` header, then a
/// `prompt_cache_key` in the body, then the session part of Claude Code's `metadata.user_id`.
enum Sessions {
    static let sessionHeader = HTTPField.Name("x-quotaflow-session")!
    static let codexSessionHeader = HTTPField.Name("session_id")!

    static func identify(_ parsed: ParsedRequest, headers: HTTPFields) -> String? {
        for name in [sessionHeader, codexSessionHeader] {
            if let v = headers[name]?.trimmingWhitespace(), !v.isEmpty { return String(v.prefix(200)) }
        }
        if let key = ParsedRequest.value("prompt_cache_key", parsed.scan, parsed.body)?.stringValue, !key.isEmpty {
            return "pck:" + String(key.prefix(200))
        }
        return parsed.claudeSession
    }

    /// Claude Code's `metadata.user_id`: `user_<hash>_account_<uuid>_session_<uuid>` in older
    /// versions, a JSON string `{"device_id", "account_uuid", "session_id"}` in newer ones. Returns
    /// the user (for per-user limits) and the session; anything else is all user, no session.
    static func claudeUserId(_ value: String) -> (user: String, session: String?) {
        if value.hasPrefix("{"), let object = try? JSONParser.parse(Array(value.utf8)) {
            let session = object["session_id"]?.stringValue.flatMap { $0.isEmpty ? nil : $0 }
            let account = object["account_uuid"]?.stringValue.flatMap { $0.isEmpty ? nil : $0 }
            let device = object["device_id"]?.stringValue.flatMap { $0.isEmpty ? nil : $0 }
            if let user = account ?? device { return (user, session) }
            return (value, session)
        }
        guard value.hasPrefix("user_"), let marker = value.range(of: "_session_") else { return (value, nil) }
        let session = String(value[marker.upperBound...])
        let head = value[..<marker.lowerBound]
        let user = head.range(of: "_account_").map { String(head[..<$0.lowerBound]) } ?? String(head)
        return (user, session.isEmpty ? nil : session)
    }
}
