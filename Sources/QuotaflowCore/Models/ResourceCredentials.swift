// How a resource reaches its platform beyond a static key: OAuth token endpoints (organisation
// credentials, Entra applications, Google service accounts) and cloud settings (Bedrock, Vertex AI,
// Azure OpenAI).

/// How an organisation resource gets its access tokens from an OAuth token endpoint. The secrets
/// (client secret, refresh token, access token) are stored apart, encrypted, and never shown.
public struct OAuthSettings: Sendable, Equatable {
    public enum Grant: String, Sendable, CaseIterable {
        /// A refresh token the provider issued to the organisation; it may rotate on every refresh.
        case refreshToken = "refresh_token"
        /// A client id and secret (Entra applications, service accounts).
        case clientCredentials = "client_credentials"
        /// A Google service account: a JWT signed with its private key (RFC 7523), for Vertex AI.
        case jwtBearer = "jwt_bearer"
    }

    public var tokenURL: String
    public var clientId: String
    public var grant: Grant
    public var scope: String

    public init(tokenURL: String, clientId: String, grant: Grant, scope: String = "") {
        self.tokenURL = tokenURL
        self.clientId = clientId
        self.grant = grant
        self.scope = scope
    }
}

/// Where a cloud resource lives and how client model names map to the platform's: Bedrock's model
/// or inference-profile ids, Vertex's `claude-sonnet-4-5@20250929`, Azure's deployment names.
public struct CloudSettings: Sendable, Equatable {
    /// AWS or Google region (`us-east-1`, `us-east5`, `global`).
    public var region: String
    /// Google Cloud project (Vertex).
    public var project: String
    /// Azure `api-version` for deployment URLs.
    public var apiVersion: String
    /// Client model name to platform id; a model not listed goes as it is.
    public var modelMap: [String: String]
    /// The `anthropic-beta` features this resource accepts; a request asking for another one is not
    /// routed here. `nil`: the platform's list (`CloudSettings.defaultBetas`).
    public var betas: [String]?

    public init(region: String = "", project: String = "", apiVersion: String = "", modelMap: [String: String] = [:], betas: [String]? = nil) {
        self.region = region
        self.project = project
        self.apiVersion = apiVersion
        self.modelMap = modelMap
        self.betas = betas
    }

    /// The platform id for a client model name.
    public func platformModel(_ model: String) -> String { modelMap[model] ?? model }

    /// Betas Claude on Bedrock and on Vertex accept, from the platforms' documentation and what
    /// Claude Code sends them successfully (`claude-code-20250219`, interleaved and adaptive thinking,
    /// effort); first-party-only ones (files, the code-execution and MCP tools, OAuth, the 1-hour cache
    /// TTL, advanced tool use and tool search, which Bedrock answers "invalid beta flag") are not
    /// among them. Models differ: a resource can list its own.
    public static let defaultBetas: [Provider: Set<String>] = [
        .bedrock: [
            "claude-code-20250219", "computer-use-2024-10-22", "computer-use-2025-01-24", "token-efficient-tools-2025-02-19",
            "interleaved-thinking-2025-05-14", "output-128k-2025-02-19", "dev-full-thinking-2025-05-14", "context-1m-2025-08-07",
            "context-management-2025-06-27", "fine-grained-tool-streaming-2025-05-14", "effort-2025-11-24", "adaptive-thinking-2026-01-28",
        ],
        .vertex: [
            "claude-code-20250219", "computer-use-2024-10-22", "computer-use-2025-01-24", "token-efficient-tools-2025-02-19",
            "interleaved-thinking-2025-05-14", "output-128k-2025-02-19", "context-1m-2025-08-07", "context-management-2025-06-27",
            "fine-grained-tool-streaming-2025-05-14", "effort-2025-11-24", "adaptive-thinking-2026-01-28",
        ],
    ]

    /// The betas a resource of `provider` with these settings accepts; `nil` when any goes (first-party APIs).
    public static func acceptedBetas(_ provider: Provider, _ settings: CloudSettings?) -> Set<String>? {
        if let listed = settings?.betas { return Set(listed) }
        return defaultBetas[provider]
    }
}
