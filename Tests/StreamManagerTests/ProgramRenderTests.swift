import Foundation
import HubCore
import HubTestSupport
import HTTPTypes
import HummingbirdTesting
import NIOCore
import StreamHub
import Testing
@testable import StreamManager

/// Real ffmpeg renders a real program; the assertions read pixels of the HLS output StreamHub serves.
@Suite(.enabled(if: ChildProcess.locate("ffmpeg") != nil, "needs ffmpeg"))
struct ProgramRenderTests {
    /// The RGB colour at (x, y) of the first frame of the newest segment of the program's output, and whether
    /// that segment's first two frames are the same picture.
    static func sample(_ api: APIClient, program: String, x: Int, y: Int, width: Int, directory: String) async throws -> (rgb: [UInt8], still: Bool)? {
        guard let frames = try await frames(api, program: program, count: 2, directory: directory), frames.count == 2,
              // A segment that held one frame comes back as two halves: too short to sample, so ask again.
              (y * width + x) * 3 + 3 <= frames[0].count
        else { return nil }
        // Still: the two decoded frames differ by less than one level on average (the encoding is lossy).
        let (first, second) = (frames[0], frames[1])
        var difference = 0
        for index in first.indices { difference += abs(Int(first[index]) - Int(second[index])) }
        return (rgb(first, x, y, width: width), Double(difference) / Double(first.count) < 1)
    }

    /// The first `count` frames of the newest segment of the program's output (read through StreamHub), as RGB bytes.
    static func frames(_ api: APIClient, program: String, count: Int, directory: String) async throws -> [[UInt8]]? {
        let playlist = try await api.get("/programs/\(program)/live.m3u8")
        guard playlist.status == .ok, let last = playlist.text.split(separator: "\n").last(where: { $0.hasSuffix(".ts") }) else { return nil }
        let segment = try await api.client.execute(uri: "/programs/\(program)/\(last)", method: .get,
                                                   headers: [.authorization: "Bearer \(api.token ?? "")"])
        guard segment.status == .ok else { return nil }
        let path = "\(directory)/sample.ts"
        try Data(segment.body.readableBytesView).write(to: URL(fileURLWithPath: path))
        let output = try await ChildProcess.run("ffmpeg", ["-v", "error", "-i", path, "-frames:v", "\(count)", "-f", "rawvideo", "-pix_fmt", "rgb24", "-"],
                                                timeout: .seconds(10))
        let size = output.stdout.count / count
        guard output.status == 0, size > 0 else { return nil }
        let bytes = [UInt8](output.stdout)
        return (0..<count).map { Array(bytes[($0 * size)..<(($0 + 1) * size)]) }
    }

    /// The first frame of the newest segment of the program's output.
    static func frame(_ api: APIClient, program: String, directory: String) async throws -> [UInt8]? {
        try await frames(api, program: program, count: 1, directory: directory)?.first
    }

    static func rgb(_ frame: [UInt8], _ x: Int, _ y: Int, width: Int) -> [UInt8] {
        let offset = (y * width + x) * 3
        return Array(frame[offset..<(offset + 3)])
    }

    static func isGreen(_ rgb: [UInt8]) -> Bool { rgb[1] > 150 && rgb[0] < 100 && rgb[2] < 100 }
    static func isRed(_ rgb: [UInt8]) -> Bool { rgb[0] > 180 && rgb[1] < 80 && rgb[2] < 80 }
    static func isDark(_ rgb: [UInt8]) -> Bool { rgb.allSatisfy { $0 < 60 } }

    static func state(_ api: APIClient, _ program: String) async throws -> [String: Any] {
        (try await api.get("/api/v1/programs/\(program)").json["stream"] as? [String: Any]) ?? [:]
    }

    @Test func layersShowHideMoveAndPauseLiveWithoutRestartingAndACrashRestarts() async throws {
        try await withTestApplication { app, client in
            let team = try await Team.make(app, client)
            let work = try TemporaryDirectory()
            defer { work.remove() }
            let editor = team.editor
            let created = try await editor.post("/api/v1/programs", #"{"name":"desk","width":320,"height":180,"fps":10,"preset":"ultrafast","video_bitrate":400}"#)
            #expect(created.status == .created, "\(created.text)")
            // A red box (text the colour of its background), hidden at first.
            let box = try await editor.post("/api/v1/programs/desk/layers",
                ##"{"kind":"text","text":"X","visible":false,"x":200,"y":100,"width":80,"height":60,"style":{"color":"#ff0000","background":"#ff0000","font_size":20}}"##)
            let boxID = try #require(box.json["id"] as? Int, "\(box.text)")
            let caption = try await editor.post("/api/v1/programs/desk/layers", #"{"kind":"text","text":"Good evening","x":0,"y":0,"width":320,"height":30}"#)
            let captionID = try #require(caption.json["id"] as? Int)
            #expect(try await editor.post("/api/v1/programs/desk/start").status == .ok)
            try await eventually("the program goes live", within: 20) {
                let state = try await Self.state(team.viewer, "desk")
                return state["isLive"] as? Bool == true && (state["frameCount"] as? Int ?? 0) > 10
            }
            // The seed's state channel: the welcome, the program's current state at once, then updates every second.
            let channel = WebSocketProbe(port: client.port!, path: "/api/stream/ws?target=state&token=\(team.viewer.token!)")
            #expect(try await channel.nextJSON()["type"] as? String == "welcome")
            var updates = 0
            while updates < 3 {
                let message = try await channel.nextJSON(within: 5)
                guard message["type"] as? String == "stateUpdate", let payload = message["payload"] as? [String: Any],
                      (payload["program"] as? [String: Any])?["name"] as? String == "desk" else { continue }
                let stream = try #require(payload["stream"] as? [String: Any])
                #expect(stream["isLive"] as? Bool == true && stream["targetFPS"] as? Int == 10 && stream["isPaused"] as? Bool == false)
                #expect(stream["frameCount"] is Int && stream["droppedFrames"] is Int && stream["averageRenderTime"] is Double)
                updates += 1
            }
            await channel.close()
            let anonymous = WebSocketProbe(port: client.port!, path: "/api/stream/ws?target=state")
            #expect(try await anonymous.closeFrame()?.closeCode == .unknown(4401))
            let viewer = team.viewer, path = work.path
            @Sendable func pixel(_ x: Int, _ y: Int) async throws -> [UInt8]? {
                try await Self.sample(viewer, program: "desk", x: x, y: y, width: 320, directory: path)?.rgb
            }
            try await eventually("the hidden box is not drawn", within: 15) { try await pixel(240, 130).map(Self.isDark) ?? false }

            #expect(try await editor.patch("/api/v1/programs/desk/layers/\(boxID)", #"{"visible":true}"#).status == .ok)
            try await eventually("the box appears", within: 15) { try await pixel(240, 130).map(Self.isRed) ?? false }
            #expect(try await editor.patch("/api/v1/programs/desk/layers/\(boxID)", #"{"x":20}"#).status == .ok)
            try await eventually("the box moves", within: 15) {
                guard let moved = try await pixel(60, 130), let old = try await pixel(240, 130) else { return false }
                return Self.isRed(moved) && Self.isDark(old)
            }
            #expect(try await editor.patch("/api/v1/programs/desk/layers/\(boxID)", #"{"visible":false}"#).status == .ok)
            try await eventually("the box disappears", within: 15) { try await pixel(60, 130).map(Self.isDark) ?? false }
            // Text changes live too.
            #expect(try await editor.patch("/api/v1/programs/desk/layers/\(captionID)", #"{"text":"Good night"}"#).status == .ok)

            var state = try await Self.state(team.viewer, "desk")
            #expect(state["restarts"] as? Int == 0, "show, move, hide and new text never restarted ffmpeg: \(state)")
            #expect((state["liveChanges"] as? Int ?? 0) >= 3)
            #expect(state["targetFPS"] as? Int == 10)

            // Pause: frames keep coming, and they are still; resume: live layers are back.
            _ = try await editor.patch("/api/v1/programs/desk/layers/\(boxID)", #"{"visible":true}"#)
            #expect(try await editor.post("/api/v1/programs/desk/pause").json["state"] as? String == "paused")
            let pausedAt = try await Self.state(team.viewer, "desk")["frameCount"] as? Int ?? 0
            try await eventually("paused frames are still and the box is gone", within: 15) {
                guard let sample = try await Self.sample(team.viewer, program: "desk", x: 60, y: 130, width: 320, directory: work.path) else { return false }
                return sample.still && Self.isDark(sample.rgb)
            }
            try await eventually("frames keep flowing while paused", within: 10) {
                (try await Self.state(team.viewer, "desk")["frameCount"] as? Int ?? 0) > pausedAt + 10
            }
            #expect(try await Self.state(team.viewer, "desk")["isPaused"] as? Bool == true)
            #expect(try await editor.post("/api/v1/programs/desk/resume").json["state"] as? String == "running")
            try await eventually("the box is back after resume", within: 15) { try await pixel(60, 130).map(Self.isRed) ?? false }
            state = try await Self.state(team.viewer, "desk")
            #expect(state["restarts"] as? Int == 0, "pause and resume are live too: \(state)")

            // A crashed ffmpeg is restarted and the program comes back.
            let killed = try await ChildProcess.run("pkill", ["-9", "-f", "\(app.configuration.dataDirectory)/programs/desk/live.m3u8"], timeout: .seconds(5))
            #expect(killed.status == 0, "ffmpeg was running")
            try await eventually("the renderer restarts", within: 20) {
                let state = try await Self.state(team.viewer, "desk")
                return (state["restarts"] as? Int ?? 0) >= 1 && state["isLive"] as? Bool == true
            }
            try await eventually("the output is live again", within: 20) { try await pixel(60, 130).map(Self.isRed) ?? false }

            // Captions: a caption posted to the community is drawn in the captions layer's band.
            let community = try await team.admin.post("/api/v1/communities", #"{"name":"Night desk"}"#)
            let communityID = try #require((community.json["community"] as? [String: Any])?["id"] as? Int, "\(community.text)")
            let band = try await editor.post("/api/v1/programs/desk/layers",
                ##"{"kind":"captions","community_id":\##(communityID),"x":0,"y":140,"width":320,"height":40,"style":{"color":"#00ff00","background":"#00000000","font_size":28,"lines":1}}"##)
            #expect(band.status == .created, "\(band.text)")
            @Sendable func greenInBand() async throws -> Int? {
                guard let frame = try await Self.frame(viewer, program: "desk", directory: path) else { return nil }
                var green = 0
                for y in 140..<180 { for x in 0..<320 { if Self.isGreen(Self.rgb(frame, x, y, width: 320)) { green += 1 } } }
                return green
            }
            try await eventually("the empty captions band shows nothing", within: 20) { try await greenInBand() == 0 }
            let posted = try await client.execute(uri: "/api/v1/internal/captions", method: .post,
                                                  headers: [.contentType: "application/json", HTTPField.Name("X-Service-Key")!: testServiceKey],
                                                  body: ByteBuffer(string: #"{"community_id":\#(communityID),"text":"HELLO WORLD","is_final":true}"#))
            #expect(posted.status.code < 300, "\(String(buffer: posted.body))")
            try await eventually("the caption is drawn", within: 15) { (try await greenInBand() ?? 0) > 200 }
            // Fading, as on the overlay page: the line goes once it is 2 s old (a live change: no restart).
            let restartsBefore = try await Self.state(team.viewer, "desk")["restarts"] as? Int
            let bandID = try #require(band.json["id"] as? Int)
            let faded = try await editor.patch("/api/v1/programs/desk/layers/\(bandID)", #"{"style":{"fade_seconds":2}}"#)
            #expect((faded.json["style"] as? [String: Any])?["fade_seconds"] as? Double == 2, "\(faded.text)")
            try await eventually("the caption fades out", within: 15) { try await greenInBand() == 0 }
            #expect(try await Self.state(team.viewer, "desk")["restarts"] as? Int == restartsBefore, "fading is a text change")

            let metrics = try await team.admin.get("/metrics")
            #expect(metrics.text.contains(#"streamhub_program_live{program="desk"} 1"#), "\(metrics.status)")
            #expect(metrics.text.contains(#"streamhub_program_fps{program="desk"}"#))

            #expect(try await editor.post("/api/v1/programs/desk/stop").json["state"] as? String == "stopped")
            try await eventually("the renderer stops", within: 10) { try await Self.state(team.viewer, "desk")["isLive"] as? Bool != true }
            // Deleting the program removes its output.
            let output = "\(app.configuration.dataDirectory)/programs/desk"
            #expect(FileManager.default.fileExists(atPath: "\(output)/live.m3u8"))
            #expect(try await editor.delete("/api/v1/programs/desk").status == .noContent)
            try await eventually("the program's output is removed", within: 10) { !FileManager.default.fileExists(atPath: output) }
        }
    }

    /// Image layers: an uploaded PNG drawn with its transparency, shown, hidden and moved live; a crop; a JPEG.
    @Test func imageLayersAreDrawnWithTransparencyCropAndLiveChanges() async throws {
        try await withTestApplication { app, client in
            let team = try await Team.make(app, client)
            let work = try TemporaryDirectory()
            defer { work.remove() }
            let editor = team.editor, viewer = team.viewer, path = work.path
            _ = try await editor.post("/api/v1/programs", #"{"name":"brand","width":320,"height":180,"fps":10,"preset":"ultrafast","video_bitrate":400}"#)
            // 80x60: the top half opaque red, the bottom half fully transparent.
            let badge = TestImages.png(width: 80, height: 60) { _, y in y < 30 ? [255, 0, 0, 255] : [255, 255, 255, 0] }
            let badgeID = try #require(try await editor.upload("/api/v1/images", badge, contentType: "image/png").json["id"] as? String)
            let layer = try await editor.post("/api/v1/programs/brand/layers", #"{"kind":"image","image_id":"\#(badgeID)","x":200,"y":100,"visible":false}"#)
            let layerID = try #require(layer.json["id"] as? Int, "\(layer.text)")
            // Left half green, right half red; the crop keeps the left half, stretched over the whole layer.
            let halves = TestImages.png(width: 40, height: 20) { x, _ in x < 20 ? [0, 255, 0, 255] : [255, 0, 0, 255] }
            let halvesID = try #require(try await editor.upload("/api/v1/images", halves, contentType: "image/png").json["id"] as? String)
            let cropped = try await editor.post("/api/v1/programs/brand/layers",
                                                #"{"kind":"image","image_id":"\#(halvesID)","x":0,"y":0,"width":80,"height":40,"crop":{"right":50}}"#)
            #expect(cropped.status == .created, "\(cropped.text)")
            #expect(try await editor.post("/api/v1/programs/brand/start").status == .ok)
            @Sendable func pixel(_ x: Int, _ y: Int) async throws -> [UInt8]? {
                try await Self.sample(viewer, program: "brand", x: x, y: y, width: 320, directory: path)?.rgb
            }
            try await eventually("the program runs with the badge hidden and the cropped image green all over", within: 30) {
                guard let badge = try await pixel(240, 110), let right = try await pixel(70, 20), let left = try await pixel(10, 20) else { return false }
                return Self.isDark(badge) && Self.isGreen(right) && Self.isGreen(left)
            }
            #expect(try await editor.patch("/api/v1/programs/brand/layers/\(layerID)", #"{"visible":true}"#).status == .ok)
            try await eventually("the badge appears, its transparent half showing what is under it", within: 15) {
                guard let top = try await pixel(240, 110), let bottom = try await pixel(240, 150) else { return false }
                return Self.isRed(top) && Self.isDark(bottom)
            }
            #expect(try await editor.patch("/api/v1/programs/brand/layers/\(layerID)", #"{"x":"6.25%"}"#).status == .ok)
            try await eventually("the badge moves to x 20", within: 15) {
                guard let moved = try await pixel(60, 110), let old = try await pixel(240, 110) else { return false }
                return Self.isRed(moved) && Self.isDark(old)
            }
            #expect(try await Self.state(viewer, "brand")["restarts"] as? Int == 0, "showing and moving an image are live changes")

            // A JPEG (made by ffmpeg) is drawn too.
            let jpegPath = "\(path)/blue.jpg"
            let made = try await ChildProcess.run("ffmpeg", ["-v", "error", "-f", "lavfi", "-i", "color=c=0x0000ff:s=64x48", "-frames:v", "1", "-y", jpegPath],
                                                  timeout: .seconds(20))
            #expect(made.status == 0)
            let jpeg = try [UInt8](Data(contentsOf: URL(fileURLWithPath: jpegPath)))
            let jpegAnswer = try await editor.upload("/api/v1/images", jpeg, contentType: "image/jpeg")
            #expect(jpegAnswer.status == .created && jpegAnswer.json["content_type"] as? String == "image/jpeg", "\(jpegAnswer.text)")
            let jpegID = try #require(jpegAnswer.json["id"] as? String)
            #expect(try await editor.post("/api/v1/programs/brand/layers", #"{"kind":"image","image_id":"\#(jpegID)","x":240,"y":120}"#).status == .created)
            try await eventually("the JPEG is drawn", within: 30) {
                guard let blue = try await pixel(270, 140) else { return false }
                return blue[2] > 180 && blue[0] < 80 && blue[1] < 80
            }
            #expect(try await editor.post("/api/v1/programs/brand/stop").status == .ok)
        }
    }

    /// The seed's channels for one program: state narrowed by `?program=`, JPEG previews at the asked rate,
    /// every layer change as it is applied, and client messages answered (or refused) clearly.
    @Test func programChannelsCarryStatePreviewAndLayerChanges() async throws {
        try await withTestApplication { app, client in
            let team = try await Team.make(app, client)
            let editor = team.editor
            #expect(try await editor.post("/api/v1/programs", #"{"name":"chan","width":320,"height":180,"fps":10,"preset":"ultrafast","video_bitrate":300}"#).status == .created)
            #expect(try await editor.post("/api/v1/programs", #"{"name":"other","width":320,"height":180,"fps":10}"#).status == .created)
            let text = try await editor.post("/api/v1/programs/chan/layers", #"{"kind":"text","text":"On air","x":10,"y":10,"width":200,"height":40}"#)
            let textID = try #require(text.json["id"] as? Int)
            #expect(try await editor.post("/api/v1/programs/chan/start").status == .ok)
            try await eventually("the program goes live", within: 20) { try await Self.state(team.viewer, "chan")["isLive"] as? Bool == true }
            let port = client.port!, token = team.viewer.token!
            try await eventually("the output bitrate is measured", within: 10) {
                (try await Self.state(team.viewer, "chan")["bitrate"] as? Double ?? 0) > 10
            }

            // State, narrowed to one program: its current state at once, never another program's.
            let state = WebSocketProbe(port: port, path: "/api/stream/ws?target=state&program=chan&token=\(token)")
            #expect(try await state.nextJSON()["type"] as? String == "welcome")
            for _ in 0..<2 {
                let update = try await state.nextJSON(within: 5)
                let payload = try #require(update["payload"] as? [String: Any])
                #expect(update["type"] as? String == "stateUpdate" && (payload["program"] as? [String: Any])?["name"] as? String == "chan", "\(update)")
            }
            // Client messages: a ping is answered, anything else gets an error frame and the socket stays.
            state.send("not json")
            var replies: [[String: Any]] = []
            while replies.count < 1 { let m = try await state.nextJSON(); if m["event"] as? String == "error" { replies.append(m) } }
            #expect(replies[0]["code"] as? String == "invalid_message")
            state.send(#"{"type":"subscribe"}"#)
            while true { let m = try await state.nextJSON(); if m["event"] as? String == "error" { #expect(m["code"] as? String == "unsupported_message"); break } }
            state.send(#"{"type":"ping"}"#)
            while true { let m = try await state.nextJSON(); if m["type"] as? String == "pong" { break } }
            for _ in 0..<40 { state.send(#"{"type":"ping"}"#) }
            var limited = false
            for _ in 0..<80 where !limited { limited = (try await state.nextJSON())["code"] as? String == "rate_limited" }
            #expect(limited, "more than 20 messages a second are refused")
            await state.close()
            for bad in ["nope", "..%2Fetc", "UPPER"] {
                let probe = WebSocketProbe(port: port, path: "/api/stream/ws?target=state&program=\(bad)&token=\(token)")
                #expect(try await probe.closeFrame()?.closeCode == .unknown(4404), "\(bad)")
            }
            #expect(try await WebSocketProbe(port: port, path: "/api/stream/ws?target=layers").closeFrame()?.closeCode == .unknown(4401))
            #expect(try await WebSocketProbe(port: port, path: "/api/stream/ws?target=chat&program=chan").closeFrame()?.closeCode == .unknown(4401))
            #expect(try await WebSocketProbe(port: port, path: "/api/stream/ws?target=chat&token=\(token)").closeFrame()?.closeCode == .unknown(4404),
                    "the chat channel is one program's")
            #expect(try await WebSocketProbe(port: port, path: "/api/stream/ws?target=preview&program=chan").closeFrame()?.closeCode == .unknown(4401))

            // Preview: JPEG frames of the output, at most the program's width, with the documented header.
            let preview = WebSocketProbe(port: port, path: "/api/stream/ws?target=preview&program=chan&fps=5&width=640&token=\(token)", keepBinary: true)
            #expect(try await preview.nextJSON()["type"] as? String == "welcome")
            for _ in 0..<4 {
                let frame = try await preview.nextBinary(within: 5)
                let length = Int(frame[0]) << 24 | Int(frame[1]) << 16 | Int(frame[2]) << 8 | Int(frame[3])
                let header = try #require(try JSONSerialization.jsonObject(with: frame.subdata(in: 4..<(4 + length))) as? [String: Any])
                let jpeg = frame.subdata(in: (4 + length)..<frame.count)
                #expect(header["program"] as? String == "chan" && header["format"] as? String == "jpeg" && header["width"] as? Int == 320)
                #expect(header["height"] as? Int == 180 && header["size"] as? Int == jpeg.count && jpeg.starts(with: [0xFF, 0xD8]), "\(header)")
            }
            await preview.close()
            let still = try await team.viewer.get("/programs/chan/preview-320.jpg")
            #expect(still.status == .ok && still.headers[.contentType] == "image/jpeg")
            #expect(try await team.anonymous.get("/programs/chan/preview-320.jpg").status == .unauthorized)

            // Layers: the layers as they are, then each change as it is applied (not the other program's).
            let layers = WebSocketProbe(port: port, path: "/api/stream/ws?target=layers&program=chan&token=\(token)")
            #expect(try await layers.nextJSON()["type"] as? String == "welcome")
            let snapshot = try await layers.nextJSON()
            let snapshotPayload = try #require(snapshot["payload"] as? [String: Any])
            #expect(snapshot["type"] as? String == "layers" && snapshotPayload["program"] as? String == "chan")
            #expect((snapshotPayload["layers"] as? [[String: Any]])?.map { $0["id"] as? Int } == [textID])
            #expect(try await editor.post("/api/v1/programs/other/layers", #"{"kind":"text","text":"elsewhere"}"#).status == .created)
            #expect(try await editor.patch("/api/v1/programs/chan/layers/\(textID)", #"{"visible":false,"x":30}"#).status == .ok)
            let update = try await layers.nextJSON()
            let payload = try #require(update["payload"] as? [String: Any])
            #expect(update["type"] as? String == "layerUpdate" && payload["program"] as? String == "chan" && payload["op"] as? String == "layer_updated", "\(update)")
            let layer = try #require(payload["layer"] as? [String: Any])
            #expect(layer["visible"] as? Bool == false && layer["x"] as? Int == 30 && payload["order"] as? [Int] == [textID])
            await layers.close()
            #expect(try await editor.post("/api/v1/programs/chan/stop").status == .ok)
        }
    }
}
