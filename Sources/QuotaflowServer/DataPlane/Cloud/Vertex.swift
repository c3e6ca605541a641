import Foundation
import HTTPTypes
import NIOCore
import NIOHTTP1
import QuotaflowCore

/// Google Vertex AI. Claude: the plain Messages API becomes `rawPredict`/`streamRawPredict` on the
/// publisher `anthropic` (the model, mapped to Vertex's `claude-…@date`, in the URL; the body gets
/// `anthropic_version: vertex-2023-10-16`), token counting `count-tokens:rawPredict`. Gemini: the
/// Gemini API's methods on the publisher `google`. Tokens are the service account's (JWT bearer),
/// sent as `Authorization: Bearer` by the OAuth credentials.
enum Vertex {
    static let anthropicVersion = "vertex-2023-10-16"

    /// A model id as a path segment: `@` stays as the SDKs send it (`claude-sonnet-4-6@20260115`).
    static func segment(_ model: String) -> String { SigV4.encode(model).replacingOccurrences(of: "%40", with: "@") }

    static func adapt(
        _ call: inout UpstreamCall, body: inout [UInt8], resource r: RoutableResource, endpoint: String, model: String, stream: Bool
    ) throws(Refusal) {
        guard let cloud = r.resource.cloud else { throw Refusal(.upstreamError, "the Vertex AI resource has no project and region", status: 502) }
        let platform = cloud.platformModel(model)
        let base = r.baseURL + "/v1/projects/\(SigV4.encode(cloud.project))/locations/\(SigV4.encode(cloud.region))/publishers"
        switch r.resource.wireFormat {
        case .anthropic:
            guard var object = (try? JSONParser.parse(body))?.objectMembers else {
                throw Refusal(.invalidRequest, "the request body is not a JSON object")
            }
            if endpoint == "messages.count_tokens" {
                if let i = object.firstIndex(where: { $0.0 == "model" }) { object[i].1 = .string(platform) }
                call.url = base + "/anthropic/models/count-tokens:rawPredict"
            } else {
                object.removeAll { $0.0 == "model" }
                call.url = base + "/anthropic/models/\(segment(platform)):\(stream ? "streamRawPredict" : "rawPredict")"
            }
            Bedrock.setDefault(&object, "anthropic_version", .string(anthropicVersion))
            body = JSONWriter.bytes(.object(object))
            call.headers.remove(name: "anthropic-version")
        case .gemini:
            // `{base}/v1beta/models/{model}:{method}[?alt=sse]` on the Generative Language API.
            let prefix = r.baseURL + "/v1beta/models/"
            guard call.url.hasPrefix(prefix), let colon = call.url[prefix.endIndex...].firstIndex(of: ":") else { break }
            call.url = base + "/google/models/\(segment(platform))" + call.url[colon...]
        case .openai:
            break
        }
        for name in ["x-api-key", "x-goog-api-key"] { call.headers.remove(name: name) }
    }
}
