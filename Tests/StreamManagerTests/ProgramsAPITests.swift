import Foundation
import HubCore
import HubTestSupport
import HummingbirdTesting
import StreamHub
import Testing
@testable import StreamManager

@Suite struct ProgramsAPITests {
    @Test func rtmpKeysAreMaskedWhereverTheyWouldShow() {
        #expect(Output.mask("rtmp://live.example.com/app/live_123456789abc") == "rtmp://live.example.com/app/…9abc")
        #expect(Output.mask("rtmps://h:443/app/short") == "rtmps://h:443/app/…", "a short key shows nothing")
        #expect(Output.mask("rtmp://h/app/a/b/live_123456789abc") == "rtmp://h/app/…9abc")
        let plan = RenderPlan(arguments: [], shape: [], textFiles: [:], controls: [:],
                              outputs: [Output(id: 3, url: "rtmp://h:1935/app/live_123456789abc"), Output(id: 4, url: "rtmp://k/app/other_key_0000")])
        let opened = plan.mask("[fifo @ 0x1] Error opening rtmp://h:1935/app/live_123456789abc: Connection refused")
        #expect(opened.line == "[fifo @ 0x1] Error opening rtmp://h:1935/app/…9abc: Connection refused" && opened.output == 3)
        let bare = plan.mask("[rtmp @ 0x2] Server error: stream other_key_0000 is busy")
        #expect(!bare.line.contains("other_key_0000") && bare.output == 4)
        #expect(plan.mask("[hls @ 0x3] Opening 'seg-4.ts' for writing").output == nil)
        // The tee muxer reads two levels of escapes in option values, one in file names.
        #expect(RenderPlan.teeOption("a=1:b=2") == #"a=1\\:b=2"#)
        #expect(RenderPlan.teeEscape("rtmp://h/app/k|x[y]") == #"rtmp://h/app/k\|x\[y\]"#)
    }

    @Test(arguments: TestDatabases.available)
    func programsAndLayersAreCreatedChangedReorderedAndDeleted(backend: TestDatabases.Backend) async throws {
        try await withTestApplication(backend: backend) { app, client in
            let team = try await Team.make(app, client)
            let created = try await team.editor.post("/api/v1/programs", #"{"name":"evening","width":1280,"height":720,"fps":30}"#)
            #expect(created.status == .created, "\(created.text)")
            #expect(created.headers[.location] == "/api/v1/programs/evening")
            #expect(created.json["state"] as? String == "stopped" && created.json["hls_url"] as? String == "/programs/evening/live.m3u8")
            #expect(created.json["preset"] as? String == "veryfast" && created.json["video_bitrate"] as? Int == 3000)
            let stream = try #require(created.json["stream"] as? [String: Any], "the seed's payload.stream shape")
            #expect(stream["isLive"] as? Bool == false && stream["frameCount"] as? Int == 0)
            #expect(try await team.editor.post("/api/v1/programs", #"{"name":"evening"}"#).errorCode == "program_exists")

            let lower = try await team.editor.post("/api/v1/programs/evening/layers",
                ##"{"kind":"text","text":"Breaking: storm over Omaha","x":40,"y":600,"width":1200,"height":80,"opacity":0.9,"style":{"color":"#ffff00","background":"#cc0000","font_size":40}}"##)
            #expect(lower.status == .created, "\(lower.text)")
            let lowerID = try #require(lower.json["id"] as? Int)
            #expect(lower.json["z"] as? Int == 1 && lower.json["visible"] as? Bool == true)
            #expect((lower.json["style"] as? [String: Any])?["background"] as? String == "#cc0000")
            let slate = try await team.editor.post("/api/v1/programs/evening/layers", #"{"kind":"slate","text":"Back soon","visible":true,"x":0,"y":0,"width":1280,"height":720,"z":5,"opacity":1}"#)
            let slateID = try #require(slate.json["id"] as? Int)
            #expect(slate.json["z"] as? Int == 5)

            // A change names only what changes; kind-foreign fields are dropped.
            let moved = try await team.editor.patch("/api/v1/programs/evening/layers/\(lowerID)", #"{"y":620,"visible":false,"stream_id":4}"#)
            #expect(moved.status == .ok, "\(moved.text)")
            #expect(moved.json["y"] as? Int == 620 && moved.json["visible"] as? Bool == false && moved.json["text"] as? String == "Breaking: storm over Omaha")
            #expect(moved.json["stream_id"] is NSNull)

            let order = try await team.editor.put("/api/v1/programs/evening/layers/order", #"{"order":[\#(slateID),\#(lowerID)]}"#)
            let ids = (order.json["layers"] as? [[String: Any]])?.compactMap { $0["id"] as? Int }
            #expect(ids == [slateID, lowerID], "bottom first")

            let read = try await team.viewer.get("/api/v1/programs/evening")
            #expect(read.status == .ok && read.json["version"] as? Int == 5, "\(read.text)")
            #expect((try await team.viewer.get("/api/v1/programs").json["programs"] as? [Any])?.count == 1)
            #expect(try await team.viewer.post("/api/v1/programs/evening/layers", #"{"kind":"text","text":"x"}"#).status == .forbidden)
            #expect(try await team.viewer.post("/api/v1/programs/evening/start").status == .forbidden)
            #expect(try await team.anonymous.get("/api/v1/programs/evening").status == .unauthorized)
            #expect(try await team.anonymous.get("/programs/evening/live.m3u8").status == .unauthorized)
            #expect(try await team.viewer.get("/programs/evening/live.m3u8").status == .notFound, "not running: no output yet")

            let settings = try await team.editor.patch("/api/v1/programs/evening", #"{"title":"Evening news","fps":25,"preset":"faster"}"#)
            #expect(settings.json["title"] as? String == "Evening news" && settings.json["fps"] as? Int == 25 && settings.json["preset"] as? String == "faster")
            #expect(try await team.editor.delete("/api/v1/programs/evening/layers/\(slateID)").status == .noContent)
            #expect(try await team.editor.delete("/api/v1/programs/evening/layers/\(slateID)").status == .notFound)
            #expect(try await team.editor.delete("/api/v1/programs/evening").status == .noContent)
            #expect(try await team.viewer.get("/api/v1/programs/evening").status == .notFound)
        }
    }

    @Test(arguments: TestDatabases.available)
    func badInputIsRefusedClearlyAndChangesNothing(backend: TestDatabases.Backend) async throws {
        try await withTestApplication(backend: backend) { app, client in
            let team = try await Team.make(app, client)
            _ = try await team.editor.post("/api/v1/programs", #"{"name":"main","width":640,"height":360}"#)
            let layer = try await team.editor.post("/api/v1/programs/main/layers", #"{"kind":"text","text":"Hello","x":10,"y":10,"width":200,"height":50}"#)
            let layerID = try #require(layer.json["id"] as? Int)
            let before = try await team.viewer.get("/api/v1/programs/main").text

            let programs: [(String, String)] = [
                (#"{"name":"Main Show"}"#, "validation_failed"),
                (#"{"name":"-x"}"#, "validation_failed"),
                (#"{"name":"wide","width":641}"#, "validation_failed"),
                (#"{"name":"wide","width":100000}"#, "validation_failed"),
                (#"{"name":"fast","fps":240}"#, "validation_failed"),
                (#"{"name":"slow","preset":"placebo"}"#, "validation_failed"),
                (#"{"name":"rate","video_bitrate":5}"#, "validation_failed"),
                (#"{"name":"typed","width":"1280"}"#, "invalid_json"),
                (#"{"name":"#, "invalid_json"),
                (#"[]"#, "invalid_json"),
            ]
            for (body, code) in programs {
                let answer = try await team.editor.post("/api/v1/programs", body)
                #expect(answer.errorCode == code, "\(body) → \(answer.status) \(answer.text)")
            }
            let layers: [(String, String)] = [
                (#"{"kind":"hologram"}"#, "validation_failed"),
                (#"{"text":"no kind"}"#, "validation_failed"),
                (#"{"kind":"text"}"#, "validation_failed"),
                (#"{"kind":"text","text":"off","x":5000,"y":0}"#, "validation_failed"),
                (#"{"kind":"text","text":"off","x":-300,"y":0,"width":200,"height":20}"#, "validation_failed"),
                (#"{"kind":"text","text":"huge","width":100000,"height":10}"#, "validation_failed"),
                (#"{"kind":"text","text":"dim","opacity":1.5}"#, "validation_failed"),
                (#"{"kind":"text","text":"red","style":{"color":"red"}}"#, "validation_failed"),
                (#"{"kind":"text","text":"big","style":{"font_size":1000}}"#, "validation_failed"),
                (#"{"kind":"text","text":"bell\u0007"}"#, "validation_failed"),
                (#"{"kind":"source","url":"http://169.254.169.254/latest/meta-data"}"#, "url_refused"),
                (#"{"kind":"source","url":"file:///etc/passwd"}"#, "url_refused"),
                (#"{"kind":"source","url":"http://example.org/a.m3u8","recording_id":"0123456789abcdef0123456789abcdef"}"#, "validation_failed"),
                (#"{"kind":"wall","wall":"no-such-wall"}"#, "validation_failed"),
                (#"{"kind":"wall"}"#, "validation_failed"),
                (#"{"kind":"source","recording_id":"../../etc/passwd"}"#, "validation_failed"),
                (#"{"kind":"source","stream_id":999999}"#, "validation_failed"),
                (#"{"kind":"source"}"#, "validation_failed"),
                (#"{"kind":"captions","community_id":424242}"#, "validation_failed"),
                (#"{"kind":"image","image_id":"x"}"#, "validation_failed"),
                (#"{"kind":"text","text":5}"#, "invalid_json"),
                (#"{"kind":"text","visible":"yes","text":"a"}"#, "invalid_json"),
            ]
            for (body, code) in layers {
                let answer = try await team.editor.post("/api/v1/programs/main/layers", body)
                #expect(answer.errorCode == code, "\(body) → \(answer.status) \(answer.text)")
            }
            let huge = #"{"kind":"text","text":""# + String(repeating: "a", count: 20_000) + #""}"#
            #expect(try await team.editor.post("/api/v1/programs/main/layers", huge).status == .contentTooLarge)
            #expect(try await team.editor.patch("/api/v1/programs/main/layers/\(layerID)", #"{"x":9000}"#).errorCode == "validation_failed")
            #expect(try await team.editor.patch("/api/v1/programs/main/layers/999", #"{"x":1}"#).status == .notFound)
            #expect(try await team.editor.patch("/api/v1/programs/main/layers/abc", #"{"x":1}"#).status == .notFound)
            #expect(try await team.editor.put("/api/v1/programs/main/layers/order", #"{"order":[\#(layerID),\#(layerID)]}"#).errorCode == "validation_failed")
            #expect(try await team.editor.patch("/api/v1/programs/main", #"{"audio_layer_id":\#(layerID)}"#).errorCode == "validation_failed",
                    "a text layer carries no audio")
            #expect(try await team.editor.post("/api/v1/programs/main/resume").errorCode == "not_running")
            #expect(try await team.editor.post("/api/v1/programs/main/pause").errorCode == "not_running")
            #expect(try await team.editor.post("/api/v1/programs/nope/start").status == .notFound)
            #expect(try await team.editor.post("/api/v1/programs/..%2F..%2Fetc/start").status == .notFound)
            #expect(try await team.editor.signedIn("not-a-token").post("/api/v1/programs", #"{"name":"x"}"#).status == .unauthorized)
            #expect(try await team.viewer.get("/programs/main/..%2F..%2Fstreamhub.sqlite").status == .notFound)
            #expect(try await team.viewer.get("/programs/main/seg-1.ts").status == .notFound)

            #expect(try await team.viewer.get("/api/v1/programs/main").text == before, "nothing changed")
            #expect((try await team.viewer.get("/api/v1/programs").json["programs"] as? [Any])?.count == 1)
        }
    }
}
