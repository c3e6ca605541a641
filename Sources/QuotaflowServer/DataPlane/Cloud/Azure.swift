import Foundation
import HTTPTypes
import NIOCore
import NIOHTTP1
import QuotaflowCore

/// Azure OpenAI. Chat Completions and embeddings go through the deployment URLs
/// (`{endpoint}/openai/deployments/{deployment}/...?api-version=...`, the deployment mapped from the
/// client's model); the Responses API and stored responses through Azure's v1 path
/// (`{endpoint}/openai/v1/responses`, with the deployment as `model`). The credential is sent as
/// `api-key`, or an Entra token as a bearer (OAuth client credentials, refreshed like any OAuth
/// credential). Content-filter stops pass through as Azure sent them and are flagged on the row.
enum Azure {
    static func adapt(_ call: inout UpstreamCall, body: inout [UInt8], resource r: RoutableResource, endpoint: String, model: String) throws(Refusal)
    {
        let cloud = r.resource.cloud ?? CloudSettings(apiVersion: "2024-10-21")
        let deployment = cloud.platformModel(model)
        let version = "api-version=" + SigV4.encode(cloud.apiVersion)
        switch endpoint {
        case "chat.completions", "embeddings":
            let action = endpoint == "embeddings" ? "embeddings" : "chat/completions"
            call.url = r.baseURL + "/openai/deployments/\(SigV4.encode(deployment))/\(action)?\(version)"
        default:
            // The Responses API (and calls on stored responses) on the v1 path.
            guard call.url.hasPrefix(r.baseURL + "/responses") else { break }
            call.url = r.baseURL + "/openai/v1" + call.url.dropFirst(r.baseURL.count)
            if call.sendsBody, deployment != model, var object = (try? JSONParser.parse(body))?.objectMembers {
                if let i = object.firstIndex(where: { $0.0 == "model" }) { object[i].1 = .string(deployment) }
                body = JSONWriter.bytes(.object(object))
            }
        }
        call.headers.remove(name: "authorization")
        call.headers.add(name: "api-key", value: r.credential)
    }

    /// Whether an answer (or a stream chunk) carries a content-filter stop or refusal.
    static func filtered(_ bytes: [UInt8]) -> Bool {
        JSONBytes.containsMember("finish_reason", string: "content_filter", in: bytes)
            || JSONBytes.containsMember("code", string: "content_filter", in: bytes)
    }
}
