import Foundation
import HubCore
import HTTPTypes
import HubTestSupport
import HummingbirdTesting
import NIOCore
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

    @Test func cropsCutSourcesWallsAndImagesBeforeTheyAreScaled() {
        func layer(_ id: Int64, _ kind: Layer.Kind) -> Layer {
            var layer = ProgramsController.defaultLayer
            layer.id = id
            layer.kind = kind
            layer.z = Int(id)
            layer.width = 160
            layer.height = 90
            layer.crop = Layer.Crop(left: 10, top: 0, right: 40, bottom: 25)
            return layer
        }
        var source = layer(1, .source)
        source.recordingID = String(repeating: "a", count: 32)
        let layers: [Layer] = [source, layer(2, .wall), layer(3, .image)]
        let program = Program(name: "cut", width: 320, height: 180, fps: 10, layers: layers)
        var environment = RenderPlan.Environment(directory: "/tmp/cut", selfURL: "http://127.0.0.1:1", fontFile: nil, recordingForLayer: [:], captions: [:],
                                                 controlPort: 5555)
        environment.wallGrids = [2: (2, 1)]
        environment.imageFiles = [3: "/tmp/images/logo.png"]
        let plan = RenderPlan.make(program, paused: false, environment: environment)
        let cut = "crop=iw*0.5000:ih*0.7500:iw*0.1000:ih*0.0000"
        #expect(plan.tiles.first { $0.layer == 1 }?.crop == cut, "a source is cut by its feed's decoder, at the source's own resolution")
        #expect(plan.tiles.filter { $0.layer == 2 }.allSatisfy { $0.crop == nil })
        let at = plan.arguments.firstIndex(of: "-filter_complex") ?? 0
        let graph: String = plan.arguments[at + 1]
        #expect(graph.contains("xstack=inputs=2:layout=0_0|80_0,\(cut),scale=160:90"), "the wall's mosaic is cut, then scaled back to the layer")
        #expect(graph.contains("[5:v]\(cut),scale=160:90,format=yuva420p[img3]"), "\(graph)")
        #expect(plan.arguments.contains("/tmp/images/logo.png"))
    }

    @Test func captionsShowTheLastLinesAndFadeOldOnes() {
        var style = Layer.Style()
        style.lines = 2
        let lines = [CaptionLine(text: "one", at: 100), CaptionLine(text: "two", at: 105), CaptionLine(text: "three", at: 109, interim: true)]
        #expect(RenderPlan.captionText(lines, style: style, now: 200) == "two\nthree", "no fade: the last lines stay")
        style.fadeSeconds = 5
        #expect(RenderPlan.captionText(lines, style: style, now: 110) == "three", "older than 5 s: gone")
        #expect(RenderPlan.captionText(lines, style: style, now: 120) == "")
        style.font = "DejaVu Serif"
        #expect(RenderPlan.drawText(file: "/t", size: 20, color: "#ffffff", opacity: 1, font: nil, family: style.font).hasPrefix("font=DejaVu Serif:"))
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
            let styled = try await team.editor.patch("/api/v1/programs/evening/layers/\(lowerID)", #"{"style":{"font":"DejaVu Sans Mono","fade_seconds":4.5}}"#)
            let style = try #require(styled.json["style"] as? [String: Any], "\(styled.text)")
            #expect(style["font"] as? String == "DejaVu Sans Mono" && style["fade_seconds"] as? Double == 4.5 && style["background"] as? String == "#cc0000")

            let order = try await team.editor.put("/api/v1/programs/evening/layers/order", #"{"order":[\#(slateID),\#(lowerID)]}"#)
            let ids = (order.json["layers"] as? [[String: Any]])?.compactMap { $0["id"] as? Int }
            #expect(ids == [slateID, lowerID], "bottom first")

            let read = try await team.viewer.get("/api/v1/programs/evening")
            #expect(read.status == .ok && read.json["version"] as? Int == 6, "\(read.text)")
            #expect((try await team.viewer.get("/api/v1/programs").json["programs"] as? [Any])?.count == 1)
            #expect(try await team.viewer.post("/api/v1/programs/evening/layers", #"{"kind":"text","text":"x"}"#).status == .forbidden)
            #expect(try await team.viewer.post("/api/v1/programs/evening/start").status == .forbidden)
            #expect(try await team.anonymous.get("/api/v1/programs/evening").status == .unauthorized)
            #expect(try await team.anonymous.get("/programs/evening/live.m3u8").status == .unauthorized)
            #expect(try await team.viewer.get("/programs/evening/live.m3u8").status == .notFound, "not running: no output yet")

            // A source minutes behind live: rewind_seconds (0 is live again); beyond a week is refused.
            let registered = try await team.editor.post("/api/v1/streams", #"{"link":"https://www.twitch.tv/eveningdesk"}"#)
            let streamID = try #require(registered.json["id"] as? Int, "\(registered.text)")
            let rewound = try await team.editor.post("/api/v1/programs/evening/layers", #"{"kind":"source","stream_id":\#(streamID),"rewind_seconds":300}"#)
            #expect(rewound.status == .created && rewound.json["rewind_seconds"] as? Int == 300, "\(rewound.text)")
            let rewoundID = try #require(rewound.json["id"] as? Int)
            #expect(try await team.editor.patch("/api/v1/programs/evening/layers/\(rewoundID)", #"{"rewind_seconds":604801}"#).errorCode == "validation_failed")
            #expect(try await team.editor.patch("/api/v1/programs/evening/layers/\(rewoundID)", #"{"rewind_seconds":0}"#).json["rewind_seconds"] is NSNull)
            #expect(try await team.editor.delete("/api/v1/programs/evening/layers/\(rewoundID)").status == .noContent)

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
                (#"{"kind":"text","text":"t","rewind_seconds":30}"#, "validation_failed"),
                (#"{"kind":"text","text":"t","style":{"font":"../../etc/passwd"}}"#, "validation_failed"),
                (#"{"kind":"text","text":"t","style":{"font":"Sans:fontfile=/etc/passwd"}}"#, "validation_failed"),
                (#"{"kind":"captions","community_id":1,"style":{"fade_seconds":601}}"#, "validation_failed"),
                (#"{"kind":"text","text":"t","style":{"fade_seconds":"2"}}"#, "invalid_json"),
                (#"{"kind":"text","text":"t","rewind_seconds":"30"}"#, "invalid_json"),
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

    @Test func theInspectorReadsPNGsAndJPEGsAndRefusesDamagedOnes() throws {
        let png = TestImages.solid(width: 3, height: 2, [255, 0, 0, 255])
        #expect(try ImageInspector.inspect(png) == .init(format: .png, width: 3, height: 2))
        // A minimal baseline JPEG's markers: SOI, a frame header (8-bit, 17x9, 3 components), a scan, EOI.
        let jpeg: [UInt8] = [0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x04, 0x4A, 0x46,
                             0xFF, 0xC0, 0x00, 0x11, 0x08, 0x00, 0x09, 0x00, 0x11, 0x03, 0x01, 0x22, 0x00, 0x02, 0x11, 0x01, 0x03, 0x11, 0x01,
                             0xFF, 0xDA, 0x00, 0x08, 0x01, 0x01, 0x00, 0x00, 0x3F, 0x00, 0x12, 0x34, 0xFF, 0xD9]
        #expect(try ImageInspector.inspect(jpeg) == .init(format: .jpeg, width: 17, height: 9))
        func refused(_ bytes: [UInt8]) -> String? {
            do { _ = try ImageInspector.inspect(bytes); return nil } catch { return error.description }
        }
        #expect(refused(Array("GIF89a....".utf8))?.contains("neither") == true)
        #expect(refused(Array(png.dropLast(4)))?.contains("truncated") == true)
        var flipped = png
        flipped[40] ^= 0xFF
        #expect(refused(flipped)?.contains("CRC") == true)
        #expect(refused(png + [0x3C, 0x73, 0x63])?.contains("after its end") == true, "nothing may follow IEND (polyglots)")
        let animated = Array(png[0..<33]) + TestImages.chunk("acTL", [0, 0, 0, 2, 0, 0, 0, 0]) + Array(png[33...])
        #expect(refused(animated)?.contains("animated") == true)
        let wide = Array(png[0..<8]) + TestImages.chunk("IHDR", TestImages.be32(5000) + TestImages.be32(2) + [8, 6, 0, 0, 0]) + Array(png[33...])
        #expect(refused(wide)?.contains("5000x2") == true)
        #expect(refused(Array(jpeg.dropLast(2)))?.contains("truncated") == true)
        #expect(refused([0xFF, 0xD8, 0xFF, 0xDA, 0x00, 0x02, 0xFF, 0xD9])?.contains("no frame header") == true)
    }

    @Test(arguments: TestDatabases.available)
    func imagesAreUploadedValidatedShownByLayersAndKeptWhileUsed(backend: TestDatabases.Backend) async throws {
        try await withTestApplication(backend: backend) { app, client in
            let team = try await Team.make(app, client)
            _ = try await team.editor.post("/api/v1/programs", #"{"name":"promo","width":640,"height":360}"#)
            let logo = TestImages.png(width: 64, height: 32) { x, _ in x < 32 ? [0, 255, 0, 255] : [255, 0, 0, 128] }
            let uploaded = try await team.editor.upload("/api/v1/images?name=logo.png", logo, contentType: "image/png")
            #expect(uploaded.status == .created, "\(uploaded.text)")
            let imageID = try #require(uploaded.json["id"] as? String)
            #expect(ProgramImage.isValidID(imageID))
            #expect(uploaded.json["width"] as? Int == 64 && uploaded.json["height"] as? Int == 32 && uploaded.json["size"] as? Int == logo.count)
            #expect(uploaded.json["content_type"] as? String == "image/png" && uploaded.json["name"] as? String == "logo.png")
            #expect(uploaded.headers[.location] == "/api/v1/images/\(imageID)")
            let again = try await team.editor.upload("/api/v1/images", logo, contentType: nil)
            #expect(again.status == .ok && again.json["id"] as? String == imageID, "the same bytes are the same image")

            let listed = try await team.viewer.get("/api/v1/images")
            #expect((listed.json["images"] as? [[String: Any]])?.map { $0["id"] as? String } == [imageID])
            #expect(try await team.viewer.get("/api/v1/images/\(imageID)").json["sha256"] as? String == uploaded.json["sha256"] as? String)
            let content = try await client.execute(uri: "/api/v1/images/\(imageID)/content", method: .get, headers: [.authorization: "Bearer \(team.viewer.token!)"])
            #expect(content.status == .ok && [UInt8](content.body.readableBytesView) == logo, "the bytes come back unchanged")
            #expect(content.headers[.contentType] == "image/png" && content.headers[HTTPField.Name("X-Content-Type-Options")!] == "nosniff")
            let etag = try #require(content.headers[.eTag])
            #expect(try await team.viewer.get("/api/v1/images/\(imageID)/content", headers: [.ifNoneMatch: etag]).status == .notModified)
            #expect(try await team.anonymous.get("/api/v1/images/\(imageID)/content").status == .unauthorized)

            // An image layer takes the image's own size unless told; positions and sizes may be percent of the program's.
            let layer = try await team.editor.post("/api/v1/programs/promo/layers", #"{"kind":"image","image_id":"\#(imageID)","x":"50%","y":"25%"}"#)
            #expect(layer.status == .created, "\(layer.text)")
            #expect(layer.json["x"] as? Int == 320 && layer.json["y"] as? Int == 90 && layer.json["width"] as? Int == 64 && layer.json["height"] as? Int == 32)
            let layerID = try #require(layer.json["id"] as? Int)
            let cropped = try await team.editor.patch("/api/v1/programs/promo/layers/\(layerID)", #"{"crop":{"right":50},"width":"10%"}"#)
            #expect(cropped.status == .ok, "\(cropped.text)")
            #expect((cropped.json["crop"] as? [String: Any])?["right"] as? Double == 50 && cropped.json["width"] as? Int == 64)
            #expect(try await team.editor.patch("/api/v1/programs/promo/layers/\(layerID)", #"{"crop":null}"#).json["crop"] is NSNull)
            let big = TestImages.solid(width: 1280, height: 720, [0, 0, 255, 255])
            let bigAnswer = try await team.editor.upload("/api/v1/images", big, contentType: "image/png")
            let bigID = try #require(bigAnswer.json["id"] as? String, "\(bigAnswer.status) \(bigAnswer.text)")
            let fitted = try await team.editor.post("/api/v1/programs/promo/layers", #"{"kind":"image","image_id":"\#(bigID)"}"#)
            #expect(fitted.json["width"] as? Int == 640 && fitted.json["height"] as? Int == 360, "shrunk to fit: \(fitted.text)")

            // An image in use stays; once no layer shows it, it can go.
            #expect(try await team.editor.delete("/api/v1/images/\(imageID)").errorCode == "image_in_use")
            #expect(try await team.viewer.delete("/api/v1/images/\(bigID)").status == .forbidden)
            #expect(try await team.editor.delete("/api/v1/programs/promo/layers/\(layerID)").status == .noContent)
            #expect(try await team.editor.delete("/api/v1/images/\(imageID)").status == .noContent)
            #expect(try await team.viewer.get("/api/v1/images/\(imageID)").status == .notFound)
            #expect(try await team.viewer.get("/api/v1/images/\(imageID)/content").status == .notFound)
        }
    }

    @Test(arguments: TestDatabases.available)
    func badUploadsAndImageLayersAreRefusedAndNothingIsStored(backend: TestDatabases.Backend) async throws {
        try await withTestApplication(backend: backend) { app, client in
            let team = try await Team.make(app, client)
            _ = try await team.editor.post("/api/v1/programs", #"{"name":"promo","width":640,"height":360}"#)
            let good = TestImages.solid(width: 8, height: 8, [255, 255, 255, 255])
            let uploads: [(String, [UInt8], String?, String)] = [
                ("html", Array("<script>alert(1)</script>".utf8), "text/html", "unsupported_media_type"),
                ("json", Array("{}".utf8), "application/json", "unsupported_media_type"),
                ("gif", Array("GIF89a\u{1}\u{0}\u{1}\u{0}".utf8), "image/gif", "unsupported_media_type"),
                ("not an image", Array("hello, world".utf8), "image/png", "invalid_image"),
                ("truncated", Array(good.dropLast(10)), "image/png", "invalid_image"),
                ("trailing script", good + Array("<script>".utf8), "image/png", "invalid_image"),
                ("PNG said to be JPEG", good, "image/jpeg", "invalid_image"),
                ("empty", [], "image/png", "validation_failed"),
                ("too wide", TestImages.solid(width: 4100, height: 1, [0, 0, 0, 255]), "image/png", "invalid_image"),
            ]
            for (what, bytes, type, code) in uploads {
                let answer = try await team.editor.upload("/api/v1/images", bytes, contentType: type)
                #expect(answer.errorCode == code, "\(what) → \(answer.status) \(answer.text)")
            }
            if ChildProcess.locate("ffmpeg") != nil {
                // Structurally sound (every CRC right) but its compressed data is garbage: only decoding tells.
                let garbage = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A] + Array(good[8..<33])
                    + TestImages.chunk("IDAT", [0x78, 0x9C, 0xFF, 0xFF, 0xFF, 0x00, 0x13]) + TestImages.chunk("IEND", [])
                let answer = try await team.editor.upload("/api/v1/images", garbage, contentType: "image/png")
                #expect(answer.errorCode == "invalid_image" && answer.text.contains("decode"), "\(answer.text)")
            }
            let oversized = [UInt8](repeating: 0, count: ProgramImage.maxBytes + 1)
            #expect(try await team.editor.upload("/api/v1/images", oversized, contentType: "image/png").status == .contentTooLarge)
            #expect(try await team.viewer.upload("/api/v1/images", good, contentType: "image/png").status == .forbidden)
            #expect(try await team.anonymous.upload("/api/v1/images", good, contentType: "image/png").status == .unauthorized)
            #expect(try await team.editor.signedIn("forged").upload("/api/v1/images", good, contentType: "image/png").status == .unauthorized)
            #expect(try await team.editor.upload("/api/v1/images?name=%07bell", good, contentType: "image/png").errorCode == "validation_failed")
            #expect(try await team.viewer.get("/api/v1/images/../../etc/passwd").status == .notFound)
            #expect(try await team.viewer.get("/api/v1/images/0123456789abcdef0123456789abcdef").status == .notFound)
            #expect((try await team.viewer.get("/api/v1/images").json["images"] as? [Any])?.isEmpty == true, "nothing was stored")

            let stored = try #require(try await team.editor.upload("/api/v1/images", good, contentType: "image/png").json["id"] as? String)
            let before = try await team.viewer.get("/api/v1/programs/promo").text
            let layers: [(String, String)] = [
                (#"{"kind":"image"}"#, "validation_failed"),
                (#"{"kind":"image","image_id":"0123456789abcdef0123456789abcdef"}"#, "validation_failed"),
                (#"{"kind":"image","image_id":"../\#(stored)"}"#, "validation_failed"),
                (#"{"kind":"image","image_id":7}"#, "invalid_json"),
                (#"{"kind":"image","image_id":"\#(stored)","crop":{"left":60,"right":40}}"#, "validation_failed"),
                (#"{"kind":"image","image_id":"\#(stored)","crop":{"top":-1}}"#, "validation_failed"),
                (#"{"kind":"image","image_id":"\#(stored)","crop":{"top":"10"}}"#, "invalid_json"),
                (#"{"kind":"text","text":"t","crop":{"left":10}}"#, "validation_failed"),
                (#"{"kind":"image","image_id":"\#(stored)","x":"150%"}"#, "validation_failed"),
                (#"{"kind":"image","image_id":"\#(stored)","x":"half"}"#, "invalid_json"),
                (#"{"kind":"image","image_id":"\#(stored)","width":"1e9%"}"#, "invalid_json"),
                (#"{"kind":"image","image_id":"\#(stored)","width":"0%"}"#, "validation_failed"),
            ]
            for (body, code) in layers {
                let answer = try await team.editor.post("/api/v1/programs/promo/layers", body)
                #expect(answer.errorCode == code, "\(body) → \(answer.status) \(answer.text)")
            }
            #expect(try await team.viewer.get("/api/v1/programs/promo").text == before, "no layer was added")
        }
    }
}
