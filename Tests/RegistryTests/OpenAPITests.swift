import Foundation
import HubTestSupport
import Registry
import StreamHub
import Testing

@Suite struct OpenAPITests {
    /// Every "METHOD /path" in the document.
    static func documentedOperations(_ text: String) throws -> Set<String> {
        let document = try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
        #expect(document["openapi"] as? String == "3.1.0")
        let paths = try #require(document["paths"] as? [String: [String: Any]])
        var operations = Set<String>()
        for (path, item) in paths {
            for method in item.keys where ["get", "put", "post", "patch", "delete", "head", "options"].contains(method) {
                operations.insert("\(method.uppercased()) \(path)")
            }
        }
        return operations
    }

    @Test func everyRouteIsDocumentedAndEveryDocumentedRouteExists() async throws {
        try await withTestApplication { app, client in
            let served = try await APIClient(client).get("/api/v1/openapi.json")
            #expect(served.status == .ok)
            let documented = try Self.documentedOperations(served.text)
            let routes = Set(app.routes)
            #expect(routes.subtracting(documented).sorted() == [], "routes missing from the OpenAPI document")
            #expect(documented.subtracting(routes).sorted() == [], "documented operations the server does not have")
            #expect(routes.count > 40)
        }
    }

    @Test func theCommittedCopyMatchesWhatIsServed() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let committed = try String(contentsOf: root.appendingPathComponent("docs/openapi.json"), encoding: .utf8)
        let a = try JSONSerialization.jsonObject(with: Data(committed.utf8)) as? NSDictionary
        let b = try JSONSerialization.jsonObject(with: Data(openAPIDocument.utf8)) as? NSDictionary
        #expect(a != nil && a == b, "run scripts/openapi/generate.py")
    }
}
