import Foundation
import HTTPTypes
import HubCore
import HubTestSupport
import HummingbirdTesting
import NIOCore
import StreamHub
import Testing

func jsonObject(_ buffer: ByteBuffer) throws -> [String: Any] {
    guard let object = try JSONSerialization.jsonObject(with: Data(buffer.readableBytesView)) as? [String: Any] else {
        throw TestFailure("not a JSON object: \(String(buffer: buffer))")
    }
    return object
}

/// The JSON error body's code, failing when the body is not `{"error":{"code","message"}}`.
func errorCode(_ response: TestResponse) throws -> String {
    let object = try jsonObject(response.body)
    guard let error = object["error"] as? [String: Any], let code = error["code"] as? String,
          let message = error["message"] as? String, !message.isEmpty
    else { throw TestFailure("not the JSON error shape: \(String(buffer: response.body))") }
    return code
}

@Suite struct HTTPBasicsTests {
    @Test(arguments: TestDatabases.available)
    func healthReportsTheDatabaseAndServices(backend: TestDatabases.Backend) async throws {
        try await withTestApplication(backend: backend) { _, client in
            let response = try await client.execute(uri: "/health", method: .get)
            #expect(response.status == .ok)
            let body = try jsonObject(response.body)
            #expect(body["status"] as? String == "ok")
            let database = body["database"] as? [String: Any]
            #expect(database?["status"] as? String == "ok")
            #expect(database?["kind"] as? String == backend.rawValue)
            let services = body["services"] as? [String: Any]
            #expect((services?["event_bus"] as? [String: Any])?["status"] as? String == "running")
        }
    }

    @Test func unknownRouteIsAJSON404() async throws {
        try await withTestApplication { _, client in
            let response = try await client.execute(uri: "/no/such/thing", method: .get)
            #expect(response.status == .notFound)
            #expect(try errorCode(response) == "not_found")
            #expect(response.headers[.contentType]?.hasPrefix("application/json") == true)
            #expect(response.headers[HTTPField.Name("X-Request-Id")!]?.count == 32)
        }
    }

    @Test func oversizedHeadersAreRefused() async throws {
        try await withTestApplication { _, client in
            let port = client.port!
            let big = String(repeating: "x", count: 100_000)
            let answer = try await onOwnThread {
                try rawHTTPExchange(port: port, request: "GET /health HTTP/1.1\r\nHost: x\r\nX-Big: \(big)\r\n\r\n")
            }
            #expect(answer.hasPrefix("HTTP/1.1 400"), "got: \(answer.prefix(60))")
            let normal = try await onOwnThread {
                try rawHTTPExchange(port: port, request: "GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            }
            #expect(normal.hasPrefix("HTTP/1.1 200"))
        }
    }

    @Test func metricsParseAsPrometheusText() async throws {
        try await withTestApplication { _, client in
            _ = try await client.execute(uri: "/health", method: .get)
            _ = try await client.execute(uri: "/nope", method: .get)
            let probe = WebSocketProbe(port: client.port!, path: "/events?key=\(testServiceKey)")
            probe.send(#"{"subscribe":["*"]}"#)
            _ = try await probe.next()
            let response = try await client.execute(uri: "/metrics", method: .get)
            #expect(response.status == .ok)
            #expect(response.headers[.contentType]?.hasPrefix("text/plain; version=0.0.4") == true)
            let samples = try PrometheusText.parse(String(buffer: response.body))
            #expect(samples["streamhub_http_requests_total{route=\"/health\",method=\"GET\",status=\"200\"}"] == 1)
            #expect(samples.keys.contains { $0.hasPrefix("streamhub_http_requests_total{route=\"NotFound\"") })
            #expect(samples.keys.contains { $0.hasPrefix("streamhub_http_request_duration_seconds_bucket{") })
            #expect(samples["streamhub_ws_connections{topic=\"events\"}"] == 1)
            #expect(samples["streamhub_ws_slow_client_disconnects_total"] == 0)
            #expect(samples["streamhub_ws_messages_sent_total"] != nil)
            await probe.close()
        }
    }
}

@Suite struct PublishEndpointBadInputTests {
    static let key = HTTPField.Name("X-Service-Key")!

    func post(_ client: any TestClientProtocol, body: String, key: String? = testServiceKey,
              headers extra: HTTPFields = [:]) async throws -> TestResponse {
        var headers: HTTPFields = [.contentType: "application/json"]
        if let key { headers[Self.key] = key }
        headers.append(contentsOf: extra)
        return try await client.execute(uri: "/api/v1/events", method: .post, headers: headers, body: ByteBuffer(string: body))
    }

    /// Proves a rejected request published nothing: the next event the bus delivers is the marker.
    func expectNothingPublished(_ app: StreamHubApplication, _ client: any TestClientProtocol,
                                after request: @Sendable () async throws -> Void) async throws {
        let stream = app.bus.subscribe()
        try await request()
        let marker = try await post(client, body: #"{"event":"transcription","text":"marker"}"#)
        #expect(marker.status == .accepted)
        let first = try await withDeadline(10, "marker event") { () -> String in
            for await envelope in stream { return String(buffer: envelope.payload) }
            return ""
        }
        #expect(first.contains("marker"), "a rejected request published \(first)")
    }

    @Test(arguments: [
        (nil as String?, "invalid_service_key"),
        ("wrong-key-0123456789", "invalid_service_key"),
        ("", "invalid_service_key"),
        (testServiceKey + "x", "invalid_service_key"),
    ])
    func missingOrWrongServiceKeyIs401(key: String?, code: String) async throws {
        try await withTestApplication { app, client in
            try await expectNothingPublished(app, client) {
                let response = try await post(client, body: #"{"event":"transcription","text":"x"}"#, key: key)
                #expect(response.status == .unauthorized)
                #expect(try errorCode(response) == code)
            }
        }
    }

    @Test(arguments: [
        ("{", 400, "invalid_json"),
        ("", 400, "invalid_json"),
        ("null", 400, "invalid_json"),
        ("\"text\"", 400, "invalid_json"),
        (#"{"event":5}"#, 400, "invalid_json"),
        (#"{"text":"no event"}"#, 400, "invalid_json"),
        (#"{"event":"transcription","text":5}"#, 400, "invalid_json"),
        (#"{"event":"transcription","text":"x","is_final":"yes"}"#, 400, "invalid_json"),
        (#"{"event":"wake_word","word":"w","confidence":"high"}"#, 400, "invalid_json"),
        (#"{"event":"transcription"}"#, 422, "validation_failed"),
        (#"{"event":"wake_word","word":"w"}"#, 422, "validation_failed"),
        (#"{"event":"wake_word","word":"w","confidence":1.5}"#, 422, "validation_failed"),
        (#"{"event":"wake_word","word":"","confidence":0.5}"#, 422, "validation_failed"),
        (#"{"event":"stream_deleted","id":"1"}"#, 422, "validation_failed"),
        (#"{"event":"<script>","text":"x"}"#, 422, "validation_failed"),
        ("[]", 422, "validation_failed"),
        (#"[{"event":"transcription","text":"ok"},{"event":"transcription","text":7}]"#, 400, "invalid_json"),
        (#"[{"event":"transcription","text":"ok"},{"event":"transcription"}]"#, 422, "validation_failed"),
    ])
    func malformedBodyIsRejectedAndNothingIsPublished(body: String, status: Int, code: String) async throws {
        try await withTestApplication { app, client in
            try await expectNothingPublished(app, client) {
                let response = try await post(client, body: body)
                #expect(response.status.code == status, "\(String(buffer: response.body))")
                #expect(try errorCode(response) == code)
            }
        }
    }

    @Test func tooManyEventsInOneRequestAreRefusedWhole() async throws {
        try await withTestApplication { app, client in
            try await expectNothingPublished(app, client) {
                let events = Array(repeating: #"{"event":"transcription","text":"x"}"#, count: 101)
                let response = try await post(client, body: "[" + events.joined(separator: ",") + "]")
                #expect(response.status == .unprocessableContent)
            }
        }
    }

    @Test func oversizedBodyIs413() async throws {
        try await withTestApplication(configure: { $0.maxBodySize = 4096 }) { app, client in
            try await expectNothingPublished(app, client) {
                let big = #"{"event":"transcription","text":""# + String(repeating: "a", count: 5000) + #""}"#
                let response = try await post(client, body: big)
                #expect(response.status == .contentTooLarge)
                #expect(try errorCode(response) == "payload_too_large")
            }
        }
    }

    @Test func overlongTextIs422() async throws {
        try await withTestApplication { _, client in
            let response = try await post(client, body: #"{"event":"transcription","text":""# + String(repeating: "a", count: 10_001) + #""}"#)
            #expect(response.status == .unprocessableContent)
        }
    }

    @Test func wrongMethodIsAJSONError() async throws {
        try await withTestApplication { _, client in
            let response = try await client.execute(uri: "/api/v1/events", method: .get)
            #expect([405, 404].contains(response.status.code))
            _ = try errorCode(response)
        }
    }
}

/// A strict reader of the Prometheus text exposition format: every line must be a comment, blank, or a
/// sample `name{labels} value`.
enum PrometheusText {
    static func parse(_ text: String) throws -> [String: Double] {
        var samples: [String: Double] = [:]
        let name = #"[a-zA-Z_:][a-zA-Z0-9_:]*"#
        let labels = #"(\{([a-zA-Z_][a-zA-Z0-9_]*="([^"\\]|\\.)*")(,[a-zA-Z_][a-zA-Z0-9_]*="([^"\\]|\\.)*")*\})?"#
        let sample = try Regex("^(\(name)\(labels)) (-?[0-9.eE+-]+|NaN|\\+Inf|-Inf)$")
        let type = try Regex("^# TYPE \(name) (counter|gauge|histogram|summary|untyped)$")
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            if line.isEmpty { continue }
            if line.hasPrefix("# TYPE") {
                guard line.wholeMatch(of: type) != nil else { throw TestFailure("bad TYPE line: \(line)") }
                continue
            }
            if line.hasPrefix("#") { continue }
            guard let match = line.wholeMatch(of: sample), let key = match.output[1].substring,
                  let value = Double(String(line.split(separator: " ").last ?? ""))
            else { throw TestFailure("bad sample line: \(line)") }
            samples[String(key)] = value
        }
        return samples
    }
}
