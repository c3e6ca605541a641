import Foundation
import Logging
import QuotaflowCore
import QuotaflowStore

/// Start-up failures an operator can act on.
public struct StartupError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// Resolves the master key and the operator token when the server starts.
public enum Secrets {
    /// Where the master key file lives unless one is named: beside the database.
    public static func defaultKeyFile(databasePath: String) -> String { databasePath + ".key" }

    /// Loads or creates the master key and checks it against the database.
    ///
    /// Order: the `QUOTAFLOW_MASTER_KEY` value, then the key file. Without either, a new key file is
    /// created (mode 0600) only for a database that holds no encrypted data yet; a database that was
    /// sealed with another key is refused at start, never discovered later as garbage.
    public static func masterKey(
        db: Database, explicitKey: String?, keyFile: String?, logger: Logger
    ) throws -> CredentialCipher {
        let storedCheck = try db.readSync { try $0.setting("master_key_check") }
        let checkBytes = storedCheck.flatMap { Base64.decode($0) }
        let cipher: CredentialCipher
        let source: String
        // Replicas on PostgreSQL must share one key, so none of them makes one up beside a URL.
        if db.dialect == .postgres && (explicitKey ?? "").isEmpty && keyFile == nil {
            throw StartupError("a PostgreSQL database needs the master key from QUOTAFLOW_MASTER_KEY or master_key_file (the same on every replica)")
        }
        let path = keyFile ?? defaultKeyFile(databasePath: db.path)
        if let explicitKey, !explicitKey.isEmpty {
            do { cipher = try CredentialCipher(encodedKey: explicitKey) } catch {
                throw StartupError("QUOTAFLOW_MASTER_KEY is not usable: \(error)")
            }
            source = "QUOTAFLOW_MASTER_KEY"
        } else if FileManager.default.fileExists(atPath: path) {
            let text: String
            do { text = try String(contentsOfFile: path, encoding: .utf8) } catch {
                throw StartupError("cannot read the master key file \(path): \(error.localizedDescription)")
            }
            do { cipher = try CredentialCipher(encodedKey: text) } catch {
                throw StartupError("the master key file \(path) is not usable: \(error)")
            }
            if let attrs = try? FileManager.default.attributesOfItem(atPath: path),
                let mode = attrs[.posixPermissions] as? NSNumber, mode.intValue & 0o077 != 0
            {
                logger.warning("the master key file is readable by other users; run chmod 600", metadata: ["path": "\(path)"])
            }
            source = "key file \(path)"
        } else {
            if checkBytes != nil {
                throw StartupError(
                    "this database was sealed with a master key, but neither QUOTAFLOW_MASTER_KEY nor the key file \(path) is present")
            }
            let encoded = CredentialCipher.generateEncodedKey()
            guard FileManager.default.createFile(atPath: path, contents: Data((encoded + "\n").utf8), attributes: [.posixPermissions: 0o600])
            else {
                throw StartupError("cannot create the master key file \(path)")
            }
            cipher = try CredentialCipher(encodedKey: encoded)
            logger.notice("created a new master key file; back it up with the database", metadata: ["path": "\(path)"])
            source = "new key file \(path)"
        }
        if let checkBytes {
            guard cipher.verify(checkValue: checkBytes) else {
                throw StartupError("the master key from \(source) does not match this database; start with the key it was created with")
            }
        } else {
            let check = try cipher.makeCheckValue()
            try db.writeSync { try $0.setSetting("master_key_check", Base64.encode(check)) }
        }
        return cipher
    }

    /// The digest of the operator token. From `QUOTAFLOW_OPERATOR_TOKEN` when given; otherwise the
    /// stored digest; on a first start without either, a new token is generated and printed once.
    public static func operatorTokenDigest(db: Database, explicitToken: String?, printNewToken: (String) -> Void) throws -> String {
        if let explicitToken, !explicitToken.isEmpty {
            guard explicitToken.count >= 16 else { throw StartupError("QUOTAFLOW_OPERATOR_TOKEN must be at least 16 characters") }
            return SecretDigest.of(explicitToken)
        }
        if let stored = try db.readSync({ try $0.setting("operator_token_digest") }) { return stored }
        let token = SecretKind.operatorToken.generate()
        let digest = SecretDigest.of(token)
        try db.writeSync { try $0.setSetting("operator_token_digest", digest) }
        printNewToken(token)
        return digest
    }

    /// Replaces the stored operator token; returns the new token (shown once).
    public static func resetOperatorToken(db: Database) throws -> String {
        let token = SecretKind.operatorToken.generate()
        try db.writeSync { try $0.setSetting("operator_token_digest", SecretDigest.of(token)) }
        return token
    }

    /// Gives every stored credential written before digests were kept its keyed digest (once).
    static func backfillCredentialDigests(db: Database, cipher: CredentialCipher) throws {
        try db.writeSync { conn in
            try conn.transaction {
                for (id, ciphertext) in try conn.credentialsWithoutDigest() {
                    guard let plain = try? cipher.open(ciphertext, context: "resource:\(id)") else { continue }
                    try conn.setCredentialDigest(resourceId: id, cipher.digest(plain))
                }
            }
        }
    }
}
