import CryptoExtras
import Foundation
import QuotaflowCore

/// A Google service account key (the JSON file Google issues): the JWT-bearer assertion that
/// Vertex AI's access tokens are minted from (RS256, one hour, scope cloud-platform).
struct ServiceAccount: Sendable {
    let clientEmail: String
    let privateKeyId: String
    let tokenURI: String
    let key: _RSA.Signing.PrivateKey

    static let scope = "https://www.googleapis.com/auth/cloud-platform"
    static let grantType = "urn:ietf:params:oauth:grant-type:jwt-bearer"

    struct Invalid: Error, CustomStringConvertible {
        let description: String
    }

    /// Reads the key file; the message never repeats any of it.
    init(json text: String) throws(Invalid) {
        guard let json = try? JSONParser.parse(Array(text.utf8)), case .object = json else {
            throw Invalid(description: "is not a service account key file (JSON)")
        }
        guard json["type"]?.stringValue == "service_account" || json["type"] == nil else {
            throw Invalid(description: "is not a service account key (type service_account)")
        }
        guard let email = json["client_email"]?.stringValue, !email.isEmpty, let pem = json["private_key"]?.stringValue else {
            throw Invalid(description: "needs client_email and private_key")
        }
        guard let key = try? _RSA.Signing.PrivateKey(pemRepresentation: pem) else {
            throw Invalid(description: "has a private_key that is not an RSA key in PEM form")
        }
        self.clientEmail = email
        self.privateKeyId = json["private_key_id"]?.stringValue ?? ""
        self.tokenURI = json["token_uri"]?.stringValue ?? "https://oauth2.googleapis.com/token"
        self.key = key
    }

    static func base64URL(_ bytes: some Sequence<UInt8>) -> String {
        Data(bytes).base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }

    /// The signed assertion, valid from `nowMs` for an hour.
    func assertion(nowMs: Int64) throws -> String {
        let iat = nowMs / 1000
        var header: [(String, JSONValue)] = [("alg", "RS256"), ("typ", "JWT")]
        if !privateKeyId.isEmpty { header.append(("kid", .string(privateKeyId))) }
        let claims: JSONValue = [
            "iss": .string(clientEmail), "scope": .string(Self.scope), "aud": .string(tokenURI), "iat": .int(iat), "exp": .int(iat + 3600),
        ]
        let input = Self.base64URL(JSONWriter.bytes(.object(header))) + "." + Self.base64URL(JSONWriter.bytes(claims))
        let signature = try key.signature(for: Array(input.utf8), padding: .insecurePKCS1v1_5)
        return input + "." + Self.base64URL(signature.rawRepresentation)
    }
}
