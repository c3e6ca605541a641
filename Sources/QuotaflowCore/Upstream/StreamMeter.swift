/// The event-stream shape of an API family.
public enum StreamFormat: Sendable {
    /// OpenAI Chat Completions: `data:` chunks, usage in the last one, then `data: [DONE]`.
    case chatCompletions
    /// Anthropic Messages: named events from `message_start` to `message_stop`.
    case anthropic
    /// OpenAI Responses: named events from `response.created` to `response.completed` (or
    /// `.incomplete` / `.failed`), usage in the terminal one, no `[DONE]`.
    case responses
    /// Gemini `streamGenerateContent?alt=sse`: `data:` chunks only, each with cumulative
    /// `usageMetadata`; the chunk with a `finishReason` is the last.
    case gemini
}

/// Watches a provider's event stream as it passes through: reads usage and the served model,
/// notices the terminal event, and drops the usage-only chunk a client did not ask for.
/// Every other byte is forwarded unchanged and in order.
public struct StreamMeter: Sendable {
    public let format: StreamFormat
    /// Drop OpenAI's usage-only chunk (`choices: []`) because we asked for it, not the client.
    public let dropUsageChunk: Bool

    var splitter = SSESplitter()
    public private(set) var usage: TokenUsage?
    public private(set) var servedModel: String?
    /// The id the upstream gave the response (Responses API), for follow-ups.
    public private(set) var responseId: String?
    /// Content events delivered, an estimate of output tokens if the stream is cut short.
    public private(set) var deltas: Int64 = 0
    public private(set) var sawTerminal = false
    public private(set) var sawError = false
    /// An event other than the opening ones (`response.created`, `.in_progress`, `.queued`) was seen.
    public private(set) var sawOutput = false
    var anthropicUsage: JSONValue?

    public init(format: StreamFormat, dropUsageChunk: Bool = false) {
        self.format = format
        self.dropUsageChunk = dropUsageChunk
    }

    /// Feeds upstream bytes; returns the bytes to forward now and whether they hold the terminal event.
    public mutating func feed(_ bytes: UnsafeRawBufferPointer) -> (forward: [UInt8], terminal: Bool) {
        var out: [UInt8] = []
        var terminal = false
        for event in splitter.feed(bytes) {
            let (keep, isTerminal) = inspect(event)
            if keep { out.append(contentsOf: event) }
            if isTerminal { terminal = true }
        }
        if terminal { sawTerminal = true }
        return (out, terminal)
    }

    /// Bytes left at the end of the stream (an unterminated last event), forwarded as they are.
    public mutating func flush() -> [UInt8] { splitter.flush() }

    mutating func inspect(_ event: ArraySlice<UInt8>) -> (keep: Bool, terminal: Bool) {
        switch format {
        case .chatCompletions: return inspectChat(event)
        case .anthropic: return inspectAnthropic(event)
        case .responses: return inspectResponses(event)
        case .gemini: return inspectGemini(event)
        }
    }

    mutating func inspectChat(_ event: ArraySlice<UInt8>) -> (keep: Bool, terminal: Bool) {
        let data = SSEEvent.data(event)
        if data.elementsEqual("[DONE]".utf8) { return (true, true) }
        guard !data.isEmpty else { return (true, false) }
        sawOutput = true
        if SSEEvent.hasObjectMember("usage", in: data[...]), let value = try? JSONParser.parse(data) {
            if let u = value["usage"], let parsed = UsageReader.openAI(u) { usage = parsed }
            if let m = value["model"]?.stringValue { servedModel = m }
            let choices = value["choices"]?.arrayValue ?? []
            if choices.isEmpty { return (!dropUsageChunk, false) }
            deltas += 1
            return (true, false)
        }
        if SSEEvent.hasObjectMember("error", in: data[...]) {
            sawError = true
            return (true, false)
        }
        deltas += 1
        return (true, false)
    }

    mutating func inspectAnthropic(_ event: ArraySlice<UInt8>) -> (keep: Bool, terminal: Bool) {
        guard let name = SSEEvent.name(event) else { return (true, false) }
        switch name {
        case "content_block_delta":
            sawOutput = true
            deltas += 1
        case "message_start":
            if let value = try? JSONParser.parse(SSEEvent.data(event)), let message = value["message"] {
                if let m = message["model"]?.stringValue { servedModel = m }
                if let u = message["usage"] { merge(u) }
            }
        case "message_delta":
            sawOutput = true
            if let value = try? JSONParser.parse(SSEEvent.data(event)), let u = value["usage"] { merge(u) }
        case "message_stop":
            return (true, true)
        case "error":
            sawError = true
        default:
            sawOutput = true
        }
        return (true, false)
    }

    /// The events that open a Responses stream before any output.
    public static let responsesPreamble: Set<Substring> = ["response.created", "response.in_progress", "response.queued"]

    mutating func inspectResponses(_ event: ArraySlice<UInt8>) -> (keep: Bool, terminal: Bool) {
        let data = SSEEvent.data(event)
        guard !data.isEmpty else { return (true, false) }
        // Clients dispatch on the JSON `type`; the `event:` line, when present, names the same.
        let name = SSEEvent.name(event) ?? Self.typeField(data).map { Substring($0) } ?? ""
        switch name {
        case "response.created", "response.in_progress", "response.queued":
            if responseId == nil || servedModel == nil, let value = try? JSONParser.parse(data), let r = value["response"] {
                if let id = r["id"]?.stringValue { responseId = id }
                if let m = r["model"]?.stringValue { servedModel = m }
            }
            return (true, false)
        case "response.completed", "response.incomplete", "response.failed":
            sawOutput = true
            if let value = try? JSONParser.parse(data), let r = value["response"] {
                if let id = r["id"]?.stringValue { responseId = id }
                if let m = r["model"]?.stringValue { servedModel = m }
                if let u = r["usage"], var parsed = UsageReader.responses(u) {
                    parsed.serverToolCalls = UsageReader.hostedToolCalls(r["output"])
                    usage = parsed
                }
            }
            if name == "response.failed" { sawError = true }
            return (true, true)
        case "error":
            sawError = true
            return (true, false)
        default:
            sawOutput = true
            if name.hasSuffix(".delta") { deltas += 1 }
            return (true, false)
        }
    }

    mutating func inspectGemini(_ event: ArraySlice<UInt8>) -> (keep: Bool, terminal: Bool) {
        let data = SSEEvent.data(event)
        guard !data.isEmpty else { return (true, false) }
        guard let value = try? JSONParser.parse(data) else { return (true, false) }
        if value["error"] != nil {
            sawError = true
            return (true, false)
        }
        sawOutput = true
        deltas += 1
        // Every chunk carries the usage so far: the last one wins.
        if let u = value["usageMetadata"], let parsed = UsageReader.gemini(u) { usage = parsed }
        if let m = value["modelVersion"]?.stringValue { servedModel = m }
        if let id = value["responseId"]?.stringValue { responseId = id }
        let finished = value["candidates"]?.arrayValue?.contains { $0["finishReason"]?.stringValue != nil } ?? false
        let blocked = value["promptFeedback"]?["blockReason"] != nil
        return (true, finished || blocked)
    }

    /// The `"type"` member of an event's JSON, read without parsing the whole event.
    static func typeField(_ data: [UInt8]) -> String? {
        data.withUnsafeBytes { buffer -> String? in
            guard let scan = try? JSONObjectScan.scan(buffer), let member = scan.member("type") else { return nil }
            return JSONObjectScan.value(of: member, in: buffer)?.stringValue
        }
    }

    /// Later usage fields override earlier ones (`message_delta` carries the final output count).
    mutating func merge(_ u: JSONValue) {
        var members = anthropicUsage?.objectMembers ?? []
        for (k, v) in u.objectMembers ?? [] where !v.isNull {
            members.removeAll { $0.0 == k }
            members.append((k, v))
        }
        anthropicUsage = .object(members)
        usage = UsageReader.anthropic(.object(members))
    }
}
