/// What an upstream's refusal is about, which decides whether the resource or the request is at fault.
///
/// A client must never be able to take a shared resource out of service with a request the provider
/// refuses for reasons of its own, so only `credential` and `route` lead to a re-probe, and only a
/// failed probe changes the resource's state.
public enum UpstreamRefusal: Sendable, Equatable {
    /// 401/403: the provider may have refused the resource's credential. Re-probe it.
    case credential
    /// 404 saying the URL does not exist: the resource's base URL may be wrong. Re-probe it.
    case route
    /// 404 about the model: this resource does not serve it. Cool the model here, try another resource.
    case model
    /// The client's own answer (an unknown object id, a bad parameter): relay it verbatim.
    case request

    /// Classifies a 401, 403 or 404 answer from its status and body. Other statuses are `request`.
    public static func classify(status: Int, body: [UInt8]) -> UpstreamRefusal {
        switch status {
        case 401, 403: return .credential
        case 404: return classify404(body)
        default: return .request
        }
    }

    static func classify404(_ body: [UInt8]) -> UpstreamRefusal {
        guard let value = try? JSONParser.parse(body), let error = value["error"] else { return .route }
        let message: String
        if let m = error["message"]?.stringValue {
            message = m.lowercased()
        } else if let s = error.stringValue {
            message = s.lowercased()
        } else {
            return .route
        }
        let code = error["code"]?.stringValue?.lowercased() ?? ""
        if code == "model_not_found" || message.hasPrefix("model:") || message.hasPrefix("models/") { return .model }
        let aboutModel = message.contains("model")
        let missing =
            message.contains("not found") || message.contains("does not exist") || message.contains("not exist")
            || message.contains("unknown") || message.contains("not supported")
        if aboutModel && missing { return .model }
        let routeWords = ["invalid url", "unknown request url", "unrecognized request url", "no route", "unknown endpoint", "path not found"]
        if routeWords.contains(where: message.contains) { return .route }
        let bare = message.trimmingWhitespace()
        if bare == "not found" || bare == "not_found" || bare == "404 not found" || bare == "404 page not found" { return .route }
        return .request
    }
}
