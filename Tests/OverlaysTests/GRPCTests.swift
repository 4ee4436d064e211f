import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
import HubCore
import HubTestSupport
import Overlays
import StreamHub
import Testing

/// A real gRPC client over HTTP/2 against the running server.
func withBrowserSourceClient<T: Sendable>(
    _ app: StreamHubApplication,
    _ body: @Sendable (Streamhub_V1_BrowserSourceService.Client<HTTP2ClientTransport.Posix>) async throws -> T
) async throws -> T {
    let port = try await app.grpc.listeningPort()
    return try await withGRPCClient(
        transport: try .http2NIOPosix(target: .ipv4(address: "127.0.0.1", port: port), transportSecurity: .plaintext)
    ) { client in
        try await body(Streamhub_V1_BrowserSourceService.Client(wrapping: client))
    }
}

let serviceMetadata: Metadata = {
    var metadata = Metadata()
    metadata.addString(testServiceKey, forKey: "x-service-key")
    return metadata
}()

@Suite struct GRPCTests {
    @Test func validateBroadcastAndStream() async throws {
        try await withTestApplication { app, client in
            let team = try await Team.make(app, client)
            let north = try await makeCommunity(team.editor, "north")
            let south = try await makeCommunity(team.editor, "south")
            try await withBrowserSourceClient(app) { service in
                let valid = try await service.validateOverlayKey(.with { $0.key = north.key }, metadata: serviceMetadata)
                #expect(valid.valid && valid.communityID == Int64(north.id) && !valid.inGracePeriod)
                let invalid = try await service.validateOverlayKey(.with { $0.key = String(repeating: "f", count: 64) }, metadata: serviceMetadata)
                #expect(!invalid.valid)

                // A WebSocket overlay sees captions broadcast over gRPC.
                let overlay = WebSocketProbe(port: client.port!, path: "/ws/captions/\(north.id)?key=\(north.key)")
                let reply = try await service.broadcastCaption(.with {
                    $0.communityID = Int64(north.id)
                    $0.text = "from gRPC"
                    $0.isFinal = true
                }, metadata: serviceMetadata)
                #expect(reply.stored)
                #expect(try await nextCaption(overlay)["text"] as? String == "from gRPC")
                await overlay.close()

                // StreamCaptions: history first, then live captions, in order.
                try await withDeadline(20, "StreamCaptions") {
                    try await service.streamCaptions(.with { $0.communityID = Int64(north.id); $0.key = north.key }, metadata: serviceMetadata) { response in
                        var iterator = response.messages.makeAsyncIterator()
                        let history = try await iterator.next()
                        #expect(history?.text == "from gRPC")
                        _ = try await postCaption(team.anonymous, #"{"community_id":\#(north.id),"text":"live one"}"#)
                        let live = try await iterator.next()
                        #expect(live?.text == "live one")
                    }
                }

                // A stream opened with a key ends when the key is rotated out (twice: no grace left).
                let streaming = try await makeCommunity(team.editor, "streaming")
                do {
                    try await withDeadline(20, "StreamCaptions of a rotated-out key") {
                        try await service.streamCaptions(.with { $0.communityID = Int64(streaming.id); $0.key = streaming.key },
                                                         metadata: serviceMetadata) { response in
                            for _ in 0..<2 {
                                #expect(try await team.editor.post("/api/v1/communities/\(streaming.id)/overlay_key/rotate").status == .ok)
                            }
                            for try await _ in response.messages {}
                        }
                    }
                    Issue.record("the stream must end with an error once its key is rotated out")
                } catch let error as RPCError {
                    #expect(error.code == .unauthenticated)
                }

                // Bad input and bad keys.
                await #expect(throws: RPCError.self) {
                    _ = try await service.broadcastCaption(.with { $0.communityID = Int64(north.id); $0.text = "" }, metadata: serviceMetadata)
                }
                await #expect(throws: RPCError.self) {
                    _ = try await service.broadcastCaption(.with { $0.communityID = 999; $0.text = "nobody" }, metadata: serviceMetadata)
                }
                do {
                    try await service.streamCaptions(.with { $0.communityID = Int64(north.id); $0.key = south.key }, metadata: serviceMetadata) { response in
                        for try await _ in response.messages {}
                    }
                    Issue.record("a foreign key must be refused")
                } catch let error as RPCError {
                    #expect(error.code == .permissionDenied)
                }
            }
        }
    }

    @Test(arguments: [nil, "wrong-service-key-0123456789"])
    func callsWithoutTheServiceKeyAreUnauthenticated(key: String?) async throws {
        try await withTestApplication { app, _ in
            try await withBrowserSourceClient(app) { service in
                var metadata: Metadata = [:]
                if let key { metadata.addString(key, forKey: "x-service-key") }
                do {
                    _ = try await service.validateOverlayKey(.with { $0.key = "x" }, metadata: metadata)
                    Issue.record("expected UNAUTHENTICATED")
                } catch let error as RPCError {
                    #expect(error.code == .unauthenticated)
                }
            }
        }
    }
}
