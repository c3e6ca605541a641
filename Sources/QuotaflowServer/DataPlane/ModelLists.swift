import HashTreeCollections
import Hummingbird
import QuotaflowCore

/// The model lists, each in its API's own shape: what the caller may use on the resources of its
/// project's pools that serve that API.
extension DataPlaneController {
    enum ListShape {
        /// `GET /v1/models` for OpenAI clients.
        case openAI
        /// `GET /v1/models` for Anthropic clients (`anthropic-version` or `x-api-key`).
        case anthropic
        /// `GET /v1beta/models`.
        case gemini

        /// The dialect its errors are shaped in.
        var dialect: any Dialect {
            switch self {
            case .openAI: return ChatCompletions()
            case .anthropic: return Messages()
            case .gemini: return Gemini(method: .generate, model: "")
            }
        }

        var families: Set<ApiFamily> {
            switch self {
            case .openAI: return [.chat, .responses, .embeddings]
            case .anthropic: return [.messages]
            case .gemini: return [.gemini]
            }
        }
    }

    /// The model names the caller may use through `families`.
    func allowedModels(_ request: Request, families: Set<ApiFamily>, queryKey: Bool) throws -> [String] {
        let now = clock.nowMs()
        let caller = try Caller.authenticate(request, catalog: catalog.current, now: now, queryKey: queryKey)
        let grants = caller.catalog.grants(for: caller.chain, now: now)
        let pools = Set(caller.project.poolIds)
        let pricing = caller.catalog.pricing[caller.tenant.id]?.entries.map(\.model).filter { !$0.contains("*") } ?? []
        var names = Set<String>()
        // One look per lane: its members serve the same models (the pool's size does not matter).
        for lane in pools.flatMap({ caller.catalog.lanesByPool[$0] ?? [] })
        where lane.sample.tenantId == caller.tenant.id && !families.isDisjoint(with: lane.sample.families) {
            if lane.overflow && !caller.project.overflowAllowed { continue }
            for pattern in lane.sample.models {
                if pattern.contains("*") {
                    for m in pricing where ModelPattern.matches(pattern: pattern, m) { names.insert(m) }
                } else {
                    names.insert(pattern)
                }
            }
        }
        return names.filter { caller.allows(model: $0, grantedModels: grants.models) }.sorted()
    }

    func models(_ request: Request, family shape: ListShape) throws -> Response {
        let allowed = try allowedModels(request, families: shape.families, queryKey: shape == .gemini)
        switch shape {
        case .anthropic:
            let data: [JSONValue] = allowed.map {
                ["type": "model", "id": .string($0), "display_name": .string($0), "created_at": "2025-01-01T00:00:00Z"]
            }
            return JSONResponse.make(["data": .array(data), "has_more": false, "first_id": .string(allowed.first), "last_id": .string(allowed.last)])
        case .openAI:
            let data: [JSONValue] = allowed.map { ["id": .string($0), "object": "model", "created": 0, "owned_by": "quotaflow"] }
            return JSONResponse.make(["object": "list", "data": .array(data)])
        case .gemini:
            return JSONResponse.make(["models": .array(allowed.map(Self.geminiModel))])
        }
    }

    /// `GET /v1/models/{model}` (and `/v1beta/...`): one model the caller may use, in the shape asked for, or 404.
    func model(_ request: Request, id: String, shape: ListShape) throws -> Response {
        let name = id.hasPrefix("models/") ? String(id.dropFirst(7)) : id
        let allowed = try allowedModels(request, families: shape.families, queryKey: shape == .gemini)
        guard allowed.contains(name) else { throw Refusal(.modelNotAllowed, "model '\(name.prefix(100))' is not available to this key", status: 404) }
        switch shape {
        case .gemini: return JSONResponse.make(Self.geminiModel(name))
        case .anthropic:
            return JSONResponse.make(["type": "model", "id": .string(name), "display_name": .string(name), "created_at": "2025-01-01T00:00:00Z"])
        case .openAI: return JSONResponse.make(["id": .string(name), "object": "model", "created": 0, "owned_by": "quotaflow"])
        }
    }

    static func geminiModel(_ name: String) -> JSONValue {
        [
            "name": .string("models/" + name), "baseModelId": .string(name), "version": "quotaflow", "displayName": .string(name),
            "supportedGenerationMethods": ["generateContent", "streamGenerateContent", "countTokens"],
        ]
    }
}
