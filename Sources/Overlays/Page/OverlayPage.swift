import Crypto
import Foundation
import HubCore

/// The HTML OBS loads. The static part (styles and the captions script) is rendered once at start-up,
/// and the Content-Security-Policy allows exactly that script by its hash; each community's part (its
/// sources and settings) is rendered when asked for and cached until its sources change.
enum OverlayPage {
    /// Reads its settings from the JSON block, connects to the captions WebSocket with reconnects
    /// (exponential backoff with full jitter), shows the newest lines (an interim line is replaced by
    /// the next caption), fades old lines, and keeps the connection alive with `ping`.
    static let script = #"""
    (function () {
      "use strict";
      var config = JSON.parse(document.getElementById("overlay-config").textContent);
      var box = document.getElementById("captions");
      if (!box) { return; }
      var maxLines = config.maxLines || 3, fade = config.fadeSeconds || 0;
      var attempt = 0, socket = null, pinger = null;
      function render(caption) {
        var last = box.lastElementChild;
        if (last && last.getAttribute("data-final") === "false") { box.removeChild(last); }
        var line = document.createElement("div");
        line.className = "caption-line";
        line.setAttribute("data-final", caption.is_final === false ? "false" : "true");
        line.setAttribute("data-at", String(Date.now()));
        line.textContent = caption.text;
        box.appendChild(line);
        while (box.children.length > maxLines) { box.removeChild(box.firstElementChild); }
      }
      function sweep() {
        if (!fade) { return; }
        var limit = Date.now() - fade * 1000;
        Array.prototype.slice.call(box.children).forEach(function (line) {
          if (Number(line.getAttribute("data-at")) < limit) { box.removeChild(line); }
        });
      }
      function connect() {
        var scheme = location.protocol === "https:" ? "wss://" : "ws://";
        socket = new WebSocket(scheme + location.host + "/ws/captions/" + config.communityId + "?key=" + encodeURIComponent(config.key));
        socket.onopen = function () {
          attempt = 0;
          document.body.setAttribute("data-connected", "true");
          pinger = setInterval(function () { if (socket.readyState === 1) { socket.send("ping"); } }, 20000);
        };
        socket.onmessage = function (message) {
          if (message.data === "pong") { return; }
          try {
            var data = JSON.parse(message.data);
            if (data.type === "caption") { render(data); }
          } catch (e) { /* not a caption */ }
        };
        socket.onclose = function (event) {
          document.body.setAttribute("data-connected", "false");
          clearInterval(pinger);
          if (event.code >= 4400 && event.code < 4500) { return; }  // the key is wrong: retrying will not help
          var delay = Math.random() * Math.min(30000, 500 * Math.pow(2, attempt));
          attempt = Math.min(attempt + 1, 10);
          setTimeout(connect, delay);
        };
      }
      setInterval(sweep, 1000);
      connect();
    })();
    """#

    static let scriptHash: String = "sha256-" + Data(SHA256.hash(data: Data(script.utf8))).base64EncodedString()

    static let head = """
        <!doctype html>
        <html lang="en"><head><meta charset="utf-8"><meta name="robots" content="noindex"><title>StreamHub overlay</title>
        <style>
        html,body{margin:0;padding:0;background:transparent;overflow:hidden;width:100%;height:100%}
        .source{position:absolute;border:0;background:transparent}
        #captions{position:absolute;box-sizing:border-box;padding:8px 12px;line-height:1.25;text-shadow:0 0 4px #000,0 0 2px #000}
        .caption-line[data-final=false]{opacity:.75}
        </style></head><body>
        """

    static let tail = "<script>" + script + "</script></body></html>"

    /// The policy every overlay response carries: only the script above, inline styles, WebSockets to this
    /// server, and frames from the origins of the community's own sources.
    static func contentSecurityPolicy(frameOrigins: [String]) -> String {
        let frames = frameOrigins.isEmpty ? "'none'" : frameOrigins.joined(separator: " ")
        return "default-src 'none'; script-src '\(scriptHash)'; style-src 'unsafe-inline'; connect-src 'self'; img-src 'self' data:; "
            + "frame-src \(frames); base-uri 'none'; form-action 'none'"
    }

    /// The origin (`https://host:port`) of an http(s) URL, for the CSP; `nil` for anything else.
    static func origin(of url: String) -> String? {
        guard let components = URLComponents(string: url), let scheme = components.scheme?.lowercased(), scheme == "http" || scheme == "https",
              let host = components.host, !host.isEmpty, host.allSatisfy({ $0.isLetter || $0.isNumber || ".-:[]".contains($0) })
        else { return nil }
        return "\(scheme)://\(host.lowercased())" + (components.port.map { ":\($0)" } ?? "")
    }

    /// A community's part of the page, without the key (cached per community).
    struct Rendered: Sendable {
        let body: String
        let csp: String
        let sourcesServed: Int
        let maxLines: Int
        let fadeSeconds: Double

        /// The whole page for one key: the settings block (JSON, escaped for a script element) and the script.
        func page(communityID: Int64, key: String) -> String {
            let config = JSONText.object([
                ("communityId", .int(Int(communityID))), ("key", .string(key)), ("maxLines", .int(maxLines)), ("fadeSeconds", .double(fadeSeconds)),
            ])
            return body + "<script type=\"application/json\" id=\"overlay-config\">" + HTML.scriptJSON(config) + "</script>\n" + OverlayPage.tail
        }
    }

    /// The community's part of the page: every user-supplied string is escaped; URLs that are not http(s)
    /// (or a path on this server) are left out.
    static func render(sources: [BrowserSource], streamLinks: [Int64: String], captionsOnly: Bool) -> Rendered {
        var html = head
        var origins = Set<String>()
        var served = 0
        var captionStyle = BrowserSource.Style()
        var captionBox = (x: 0, y: 780, width: 1920, height: 300, z: 100)
        for source in sources.sorted(by: { ($0.z, $0.id) < ($1.z, $1.id) }) where source.visible {
            let geometry = "left:\(source.x)px;top:\(source.y)px;width:\(source.width)px;height:\(source.height)px;z-index:\(source.z)"
            switch source.kind {
            case .captions:
                captionStyle = source.style
                captionBox = (source.x, source.y, source.width, source.height, source.z)
                served += 1
            case .web, .stream, .recording:
                guard !captionsOnly else { continue }
                let url: String?
                switch source.kind {
                case .stream: url = source.streamID.flatMap { streamLinks[$0] } ?? source.url
                case .recording: url = source.recordingID.map { "/recordings/\($0)/live.m3u8" } ?? source.url
                default: url = source.url
                }
                guard let url else { continue }
                if url.hasPrefix("/") {
                    origins.insert("'self'")
                } else {
                    guard let origin = origin(of: url) else { continue }
                    origins.insert(origin)
                }
                html += "<iframe class=\"source\" title=\"\(HTML.escape(source.name))\" src=\"\(HTML.escape(url))\" style=\"\(geometry)\" "
                    + "allow=\"autoplay\" sandbox=\"allow-scripts allow-same-origin\" referrerpolicy=\"no-referrer\"></iframe>\n"
                served += 1
            }
        }
        // Every page has the captions box; a captions source only places and styles it.
        var css = "left:\(captionBox.x)px;top:\(captionBox.y)px;width:\(captionBox.width)px;height:\(captionBox.height)px;z-index:\(captionBox.z);"
        css += "font-family:\(captionStyle.font ?? "sans-serif");font-size:\(captionStyle.size ?? 42)px;color:\(captionStyle.color ?? "#ffffff");"
        if let background = captionStyle.background { css += "background:\(background);" }
        html += "<div id=\"captions\" aria-live=\"polite\" style=\"\(HTML.escape(css))\"></div>\n"
        return Rendered(body: html, csp: contentSecurityPolicy(frameOrigins: origins.sorted()), sourcesServed: served,
                        maxLines: captionStyle.maxLines ?? 3, fadeSeconds: captionStyle.fadeSeconds ?? 0)
    }
}
