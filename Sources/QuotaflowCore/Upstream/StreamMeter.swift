/// Watches a provider's event stream as it passes through: reads usage and the served model,
/// notices the terminal event, and drops the usage-only chunk a client did not ask for.
/// Every other byte is forwarded unchanged and in order.
public struct StreamMeter: Sendable {
    public let format: WireFormat
    /// Drop OpenAI's usage-only chunk (`choices: []`) because we asked for it, not the client.
    public let dropUsageChunk: Bool

    var splitter = SSESplitter()
    public private(set) var usage: TokenUsage?
    public private(set) var servedModel: String?
    /// Content events delivered, an estimate of output tokens if the stream is cut short.
    public private(set) var deltas: Int64 = 0
    public private(set) var sawTerminal = false
    public private(set) var sawError = false
    var anthropicUsage: JSONValue?

    public init(format: WireFormat, dropUsageChunk: Bool) {
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
        case .openai:
            let data = SSEEvent.data(event)
            if data.elementsEqual("[DONE]".utf8) { return (true, true) }
            guard !data.isEmpty else { return (true, false) }
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
        case .anthropic:
            guard let name = SSEEvent.name(event) else { return (true, false) }
            switch name {
            case "content_block_delta":
                deltas += 1
            case "message_start":
                if let value = try? JSONParser.parse(SSEEvent.data(event)), let message = value["message"] {
                    if let m = message["model"]?.stringValue { servedModel = m }
                    if let u = message["usage"] { merge(u) }
                }
            case "message_delta":
                if let value = try? JSONParser.parse(SSEEvent.data(event)), let u = value["usage"] { merge(u) }
            case "message_stop":
                return (true, true)
            case "error":
                sawError = true
            default: break
            }
            return (true, false)
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
