import QuotaflowCore

extension StoreConnection {
    // MARK: pricing

    public func priceEntries(tenantId: String) throws -> [PriceEntry] {
        try query(
            """
            SELECT model, input_per_mtok_micros, output_per_mtok_micros, cached_input_per_mtok_micros, cache_write_per_mtok_micros, \
            cache_write_1h_per_mtok_micros \
            FROM price_entries WHERE tenant_id = ? ORDER BY model
            """, [.text(tenantId)]
        ).map(priceEntry(from:))
    }

    func priceEntry(from row: Row) throws -> PriceEntry {
        PriceEntry(
            model: try row.string("model"),
            price: TokenPrice(
                inputPerMTok: try row.int("input_per_mtok_micros"), outputPerMTok: try row.int("output_per_mtok_micros"),
                cachedInputPerMTok: try row.int("cached_input_per_mtok_micros"), cacheWritePerMTok: try row.int("cache_write_per_mtok_micros"),
                cacheWrite1hPerMTok: try row.optionalInt("cache_write_1h_per_mtok_micros")))
    }

    public func allPriceEntries() throws -> [String: [PriceEntry]] {
        var out: [String: [PriceEntry]] = [:]
        for row in try query(
            """
            SELECT tenant_id, model, input_per_mtok_micros, output_per_mtok_micros, cached_input_per_mtok_micros, \
            cache_write_per_mtok_micros, cache_write_1h_per_mtok_micros FROM price_entries ORDER BY tenant_id, model
            """)
        {
            out[try row.string("tenant_id"), default: []].append(try priceEntry(from: row))
        }
        return out
    }

    public func upsertPriceEntry(tenantId: String, _ e: PriceEntry, at: Int64) throws {
        try run(
            """
            INSERT INTO price_entries (tenant_id, model, input_per_mtok_micros, output_per_mtok_micros, cached_input_per_mtok_micros, \
            cache_write_per_mtok_micros, cache_write_1h_per_mtok_micros, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) \
            ON CONFLICT(tenant_id, model) DO UPDATE SET \
            input_per_mtok_micros = excluded.input_per_mtok_micros, output_per_mtok_micros = excluded.output_per_mtok_micros, \
            cached_input_per_mtok_micros = excluded.cached_input_per_mtok_micros, \
            cache_write_per_mtok_micros = excluded.cache_write_per_mtok_micros, \
            cache_write_1h_per_mtok_micros = excluded.cache_write_1h_per_mtok_micros, updated_at = excluded.updated_at
            """,
            [
                .text(tenantId), .text(e.model), .int(e.price.inputPerMTok), .int(e.price.outputPerMTok), .int(e.price.cachedInputPerMTok),
                .int(e.price.cacheWritePerMTok), .int(e.price.cacheWrite1hPerMTok), .int(at),
            ])
    }

    public func deletePriceEntry(tenantId: String, model: String) throws -> Bool {
        try run("DELETE FROM price_entries WHERE tenant_id = ? AND model = ?", [.text(tenantId), .text(model)]) > 0
    }

    // MARK: overflow offers

    static let offerColumns = "id, name, provider, wire_format, base_url, models_json, price_json, credential_hint, active, created_at, updated_at"

    func offer(from row: Row) throws -> OverflowOffer {
        OverflowOffer(
            id: try row.string("id"), name: try row.string("name"), provider: try row.enumeration("provider", Provider.self),
            wireFormat: try row.enumeration("wire_format", WireFormat.self), baseURL: try row.string("base_url"),
            models: try row.strings("models_json"),
            price: try row.stored("price_json", TokenPrice.self), credentialHint: try row.string("credential_hint"), active: try row.bool("active"),
            createdAt: try row.int("created_at"), updatedAt: try row.int("updated_at"))
    }

    public func insertOffer(_ o: OverflowOffer, ciphertext: [UInt8]) throws {
        try run(
            "INSERT INTO overflow_offers (\(Self.offerColumns), credential_ciphertext) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                .text(o.id), .text(o.name), .text(o.provider.rawValue), .text(o.wireFormat.rawValue), .text(o.baseURL), jsonText(o.models),
                .text(o.price.storedText), .text(o.credentialHint), .bool(o.active), .int(o.createdAt), .int(o.updatedAt), .blob(ciphertext),
            ])
    }

    public func updateOffer(_ o: OverflowOffer) throws {
        try run(
            "UPDATE overflow_offers SET name = ?, base_url = ?, models_json = ?, price_json = ?, active = ?, updated_at = ? WHERE id = ?",
            [.text(o.name), .text(o.baseURL), jsonText(o.models), .text(o.price.storedText), .bool(o.active), .int(o.updatedAt), .text(o.id)])
    }

    public func setOfferCredential(id: String, ciphertext: [UInt8], hint: String, at: Int64) throws {
        try run(
            "UPDATE overflow_offers SET credential_ciphertext = ?, credential_hint = ?, updated_at = ? WHERE id = ?",
            [.blob(ciphertext), .text(hint), .int(at), .text(id)])
    }

    public func offer(id: String) throws -> OverflowOffer? {
        try queryOne("SELECT \(Self.offerColumns) FROM overflow_offers WHERE id = ?", [.text(id)]).map(offer(from:))
    }

    public func offers() throws -> [OverflowOffer] {
        try query("SELECT \(Self.offerColumns) FROM overflow_offers ORDER BY name").map(offer(from:))
    }

    public func allOffersWithCiphertext() throws -> [(offer: OverflowOffer, ciphertext: [UInt8]?)] {
        try query("SELECT \(Self.offerColumns), credential_ciphertext FROM overflow_offers").map { row in
            (try offer(from: row), try row.blob("credential_ciphertext"))
        }
    }

    // MARK: seats

    static let seatColumns = """
        id, tenant_id, project_id, holder, contact, note, prefix, expires_at, budget_cap_micros, rpm, allowed_models_json, \
        previous_valid_until, revoked_at, expired_at, created_by, created_at, updated_at
        """

    func seat(from row: Row) throws -> Seat {
        Seat(
            id: try row.string("id"), tenantId: try row.string("tenant_id"), projectId: try row.string("project_id"),
            holder: try row.string("holder"),
            contact: try row.string("contact"), note: try row.string("note"), prefix: try row.string("prefix"), expiresAt: try row.int("expires_at"),
            budgetCapMicros: try row.optionalInt("budget_cap_micros"), rpm: try row.optionalInt("rpm"),
            allowedModels: try row.strings("allowed_models_json"), previousValidUntil: try row.optionalInt("previous_valid_until"),
            revokedAt: try row.optionalInt("revoked_at"), expiredAt: try row.optionalInt("expired_at"), createdBy: try row.string("created_by"),
            createdAt: try row.int("created_at"), updatedAt: try row.int("updated_at"))
    }

    public func insertSeat(_ s: Seat, digest: String) throws {
        try run(
            "INSERT INTO seats (\(Self.seatColumns), digest) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                .text(s.id), .text(s.tenantId), .text(s.projectId), .text(s.holder), .text(s.contact), .text(s.note), .text(s.prefix),
                .int(s.expiresAt), .int(s.budgetCapMicros), .int(s.rpm), jsonText(s.allowedModels), .int(s.previousValidUntil),
                .int(s.revokedAt), .int(s.expiredAt), .text(s.createdBy), .int(s.createdAt), .int(s.updatedAt), .text(digest),
            ])
    }

    public func updateSeat(_ s: Seat) throws {
        try run(
            """
            UPDATE seats SET holder = ?, contact = ?, note = ?, expires_at = ?, budget_cap_micros = ?, rpm = ?, allowed_models_json = ?, \
            previous_valid_until = ?, revoked_at = ?, expired_at = ?, updated_at = ? WHERE tenant_id = ? AND id = ?
            """,
            [
                .text(s.holder), .text(s.contact), .text(s.note), .int(s.expiresAt), .int(s.budgetCapMicros), .int(s.rpm),
                jsonText(s.allowedModels), .int(s.previousValidUntil), .int(s.revokedAt), .int(s.expiredAt), .int(s.updatedAt),
                .text(s.tenantId), .text(s.id),
            ])
    }

    /// Replaces the seat's key; the old digest keeps working until `previousValidUntil`.
    public func rotateSeatKey(_ s: Seat, newDigest: String, newPrefix: String) throws {
        try run(
            """
            UPDATE seats SET previous_digest = digest, digest = ?, prefix = ?, previous_valid_until = ?, updated_at = ? \
            WHERE tenant_id = ? AND id = ?
            """, [.text(newDigest), .text(newPrefix), .int(s.previousValidUntil), .int(s.updatedAt), .text(s.tenantId), .text(s.id)])
    }

    public func seat(tenantId: String, id: String) throws -> Seat? {
        try queryOne("SELECT \(Self.seatColumns) FROM seats WHERE tenant_id = ? AND id = ?", [.text(tenantId), .text(id)]).map(seat(from:))
    }

    public func seats(tenantId: String) throws -> [Seat] {
        try query("SELECT \(Self.seatColumns) FROM seats WHERE tenant_id = ? ORDER BY created_at, id", [.text(tenantId)]).map(seat(from:))
    }

    /// A page of a project's seats in the order they were issued, optionally in one state at `now`.
    public func seats(
        tenantId: String, projectId: String, state: SeatState?, now: Int64, after: Int64?, limit: Int
    ) throws -> [(
        seat: Seat, position: Int64
    )] {
        var sql = "SELECT \(Self.seatColumns), rowid AS position FROM seats WHERE tenant_id = ? AND project_id = ? AND rowid > ?"
        switch state {
        case .revoked?: sql += " AND revoked_at IS NOT NULL"
        case .expired?: sql += " AND revoked_at IS NULL AND expires_at <= ?"
        case .active?: sql += " AND revoked_at IS NULL AND expires_at > ?"
        case nil: break
        }
        var args: [SQLValue] = [.text(tenantId), .text(projectId), .int(after ?? 0)]
        if state == .expired || state == .active { args.append(.int(now)) }
        return try query(sql + " ORDER BY rowid LIMIT ?", args + [.int(Int64(limit))]).map { row in (try seat(from: row), try row.int("position")) }
    }

    public func seats(tenantId: String, projectId: String) throws -> [Seat] {
        try query(
            "SELECT \(Self.seatColumns) FROM seats WHERE tenant_id = ? AND project_id = ? ORDER BY created_at, id",
            [.text(tenantId), .text(projectId)]
        ).map(seat(from:))
    }

    /// Seats past expiry that the sweep has not marked yet.
    public func seatsToExpire(now: Int64) throws -> [Seat] {
        try query(
            "SELECT \(Self.seatColumns) FROM seats WHERE expires_at <= ? AND expired_at IS NULL AND revoked_at IS NULL", [.int(now)]
        ).map(seat(from:))
    }

    /// Marks a seat expired unless it already is (or was revoked); `true` if this call marked it.
    public func markSeatExpired(tenantId: String, id: String, at: Int64) throws -> Bool {
        try run(
            "UPDATE seats SET expired_at = ?, updated_at = ? WHERE tenant_id = ? AND id = ? AND expired_at IS NULL AND revoked_at IS NULL AND expires_at <= ?",
            [.int(at), .int(at), .text(tenantId), .text(id), .int(at)]) > 0
    }

    /// Every seat with its digest and, during a rotation grace period, the previous digest.
}
