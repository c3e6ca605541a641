/// One row of a tenant's pricing table.
public struct PriceEntry: Sendable, Equatable {
    /// An exact model name or a `*` pattern.
    public var model: String
    public var price: TokenPrice

    public init(model: String, price: TokenPrice) {
        self.model = model
        self.price = price
    }
}

/// Per-model list prices. An exact name wins over patterns; among patterns the longest wins.
public struct PricingTable: Sendable, Equatable {
    public let entries: [PriceEntry]
    public let defaultPrice: TokenPrice?
    /// The tenant's fee per provider-billed tool call, applied to every price this table gives.
    public let toolCallMicros: Int64
    let exact: [String: TokenPrice]
    /// Patterns, longest first, so the first match is the most specific.
    let patterns: [PriceEntry]

    public init(entries: [PriceEntry], defaultPrice: TokenPrice? = nil, toolCallMicros: Int64 = TokenPrice.defaultToolCallMicros) {
        self.entries = entries
        self.defaultPrice = defaultPrice
        self.toolCallMicros = toolCallMicros
        var exact: [String: TokenPrice] = [:]
        for e in entries where !e.model.contains("*") { exact[e.model] = e.price }
        self.exact = exact
        self.patterns = entries.filter { $0.model.contains("*") }.sorted { $0.model.utf8.count > $1.model.utf8.count }
    }

    public static func == (a: PricingTable, b: PricingTable) -> Bool {
        a.entries == b.entries && a.defaultPrice == b.defaultPrice && a.toolCallMicros == b.toolCallMicros
    }

    /// An exact name wins; then the longest matching pattern; then the default price.
    public func price(for model: String) -> TokenPrice? {
        listed(model)?.withToolCallFee(toolCallMicros)
    }

    func listed(_ model: String) -> TokenPrice? {
        if let price = exact[model] { return price }
        for e in patterns where ModelPattern.matches(pattern: e.model, model) { return e.price }
        return defaultPrice
    }

    /// Micro-USD per million tokens from dollars per million, for the seed list below.
    static func usd(_ input: Double, _ output: Double, cached: Double? = nil) -> TokenPrice {
        TokenPrice(
            inputPerMTok: Int64((input * 1_000_000).rounded()), outputPerMTok: Int64((output * 1_000_000).rounded()),
            cachedInputPerMTok: cached.map { Int64(($0 * 1_000_000).rounded()) })
    }

    /// List prices each new tenant's table is seeded with (USD per million tokens, input / output /
    /// cached input): Claude Opus 5/25, Sonnet 3/15, Haiku 1/5 (cache reads 0.1×, writes 1.25× and 2×
    /// by the provider's rule); GPT-5.4 Pro 30/180 (no cache discount); GPT-4.1 2/8/0.50; GPT-4.1
    /// Mini 0.40/1.60/0.10; text-embedding-3 small 0.02 and large 0.13; Gemini 2.5 Pro 1.25/10/0.31
    /// and Flash 0.30/2.50/0.075. Tenants add the models they use and correct what changes.
    public static let listPrices: [PriceEntry] = [
        PriceEntry(model: "claude-opus-*", price: usd(5, 25)),
        PriceEntry(model: "claude-sonnet-*", price: usd(3, 15)),
        PriceEntry(model: "claude-haiku-*", price: usd(1, 5)),
        PriceEntry(model: "claude-3-5-haiku*", price: usd(1, 5)),
        PriceEntry(model: "gpt-5.4-pro*", price: usd(30, 180, cached: 30)),
        PriceEntry(model: "gpt-4.1", price: usd(2, 8, cached: 0.50)),
        PriceEntry(model: "gpt-4.1-2*", price: usd(2, 8, cached: 0.50)),
        PriceEntry(model: "gpt-4.1-mini*", price: usd(0.40, 1.60, cached: 0.10)),
        PriceEntry(model: "text-embedding-3-small", price: usd(0.02, 0)),
        PriceEntry(model: "text-embedding-3-large", price: usd(0.13, 0)),
        PriceEntry(model: "gemini-2.5-pro*", price: usd(1.25, 10, cached: 0.31)),
        PriceEntry(model: "gemini-2.5-flash*", price: usd(0.30, 2.50, cached: 0.075)),
    ]
}
