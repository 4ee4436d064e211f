import HubCore
import Hummingbird

/// `GET /api/v1/openapi.json`: the API description (public, like the API's shape itself).
struct OpenAPIController {
    func addRoutes(to group: RouterGroup<HubRequestContext>) {
        group.get("openapi.json") { _, _ in
            jsonResponse(openAPIDocument, headers: [.cacheControl: "public, max-age=300"])
        }
    }
}
