import Foundation
import Logging

/// Everything an instance needs to know about its environment, parsed and validated once at start-up
/// and passed down explicitly. There are no other sources of configuration.
public struct HubConfiguration: Sendable {
    /// Where the database lives and which backplane follows from it.
    public enum Database: Sendable, Equatable {
        /// A SQLite file; the embedded default.
        case sqlite(path: String)
        /// A PostgreSQL server, given by its `postgres://` URL.
        case postgres(url: String)

        /// A description safe to log: the password of a PostgreSQL URL is masked.
        public var redacted: String {
            switch self {
            case .sqlite(let path): return "sqlite://\(path)"
            case .postgres(let url):
                guard var components = URLComponents(string: url) else { return "postgres://…" }
                if components.password != nil { components.password = "****" }
                return components.string ?? "postgres://…"
            }
        }
    }

    /// How log lines are written.
    public enum LogFormat: String, Sendable, CaseIterable {
        case text
        case json
    }

    public var host: String
    public var port: Int
    public var grpcPort: Int
    public var dataDirectory: String
    public var database: Database
    /// Keys accepted in `X-Service-Key` (and gRPC `x-service-key`); empty means service endpoints refuse everyone.
    public var serviceKeys: [String]
    /// The JWT signing secret; `nil` means "generate once and keep it in the data directory".
    public var jwtSecret: String?
    public var allowPrivateSources: Bool
    public var logLevel: Logger.Level
    public var logFormat: LogFormat
    public var instanceID: String
    /// Largest request body accepted, in bytes.
    public var maxBodySize: Int
    /// Largest inbound WebSocket frame accepted, in bytes.
    public var webSocketMaxFrameSize: Int
    /// Bytes that may wait in one WebSocket's outbound queue before the client counts as too slow.
    public var webSocketMaxQueuedBytes: Int
    /// Interval between WebSocket pings.
    public var webSocketPingInterval: Duration
    /// How long a graceful shutdown may take before the remaining work is cancelled.
    public var shutdownTimeout: Duration
    /// Writes one user or API key may make per minute.
    public var writeRateLimit: Int
    /// Failed sign-ins one IP address may make per minute before it gets 429.
    public var loginFailureLimit: Int
    /// bcrypt cost of new password hashes.
    public var bcryptCost: Int
    /// Seconds a rotated-out overlay key stays valid.
    public var overlayGracePeriod: Double
    /// Seconds stored captions are kept.
    public var captionRetention: Double
    /// Seconds overlay access-log entries are kept.
    public var accessLogRetention: Double
    /// A bearer token that opens `/metrics` and the details of `/health` from anywhere; `nil`: none.
    public var metricsToken: String? = nil
    /// Seconds the maintenance lease lasts: the instance holding it runs the jobs that must run once
    /// (scheduled key rotation, retention sweeps of shared tables); another takes over within this when it dies.
    public var jobLease: Double = 15
    /// The URL other instances reach this one at (`http://10.0.0.5:8027`): they fetch the segments on this
    /// instance's disk through it. `nil`: worked out from the host and port.
    public var advertiseURL: String? = nil
    /// Proxies whose `X-Forwarded-For` names the client (nginx in front); none by default.
    public var trustedProxies: [IPNetwork] = []
    /// Seconds between scheduled backups (on the maintenance lease holder); 0: none.
    public var backupInterval: Double = 86_400
    /// Scheduled backups kept (the oldest go).
    public var backupKeep = 7
    /// Where scheduled backups go; `nil`: `<data dir>/backups`.
    public var backupDirectory: String? = nil
    /// Networks that read `/metrics` and the details of `/health` without the token.
    public var metricsNetworks: [IPNetwork] = IPNetwork.loopbackAndPrivate
    /// Chat connectors and link detection.
    public var discovery = DiscoverySettings()
    /// Live/offline checks.
    public var status = StatusSettings()
    /// HLS recording.
    public var recorder = RecorderSettings()
    /// Speech to text.
    public var transcription = TranscriptionSettings()

    /// Settings of the `Transcription` module.
    public struct TranscriptionSettings: Sendable, Equatable {
        /// Transcribers one instance runs at most (each is one engine process).
        public var maxTranscribers = 4
        /// Command engines the operator allows: name → program and arguments (no shell). Users pick one by name.
        public var commands: [String: [String]] = [:]
        /// The Python 3 that runs the built-in PocketSphinx engine.
        public var pythonPath = "python3"
        /// Seconds a transcriber's lease lasts (renewed at a third of it).
        public var leaseDuration: Double = 30

        public init() {}
    }

    /// Settings of the `Discovery` module.
    public struct DiscoverySettings: Sendable, Equatable {
        /// Hosts whose every link counts as a stream (besides the known platforms and .m3u8 links).
        public var extraHosts: [String] = []
        /// Places the location parser knows, "City, ST; Other City, ST".
        public var places = ""
        /// Twitch channels to read (empty: the Twitch connector is off).
        public var twitchChannels: [String] = []
        public var twitchIRCURL = "ircs://irc.chat.twitch.tv:6697"
        /// Nick for Twitch chat; an anonymous justinfan nick when nil.
        public var twitchNick: String?
        public var twitchOAuthToken: String?
        /// Discord bot token (nil: the Discord connector is off).
        public var discordToken: String?
        public var discordChannels: [String] = []
        public var discordGatewayURL = "wss://gateway.discord.gg/?v=10&encoding=json"
        public var discordIntents = 1 | 512 | 32768

        public init() {}
    }

    /// Settings of the `StatusChecker` module.
    public struct StatusSettings: Sendable, Equatable {
        /// Whether the periodic checker runs.
        public var enabled = true
        /// Seconds between checks of live streams, and of the rest.
        public var liveInterval: Double = 300
        public var interval: Double = 900
        /// Per-platform interval overrides in seconds, e.g. ["youtube": 600].
        public var platformIntervals: [String: Double] = [:]
        /// Checks running at once.
        public var concurrency = 64
        /// Requests per second to one host (host:port).
        public var hostRate: Double = 5
        /// Seconds one check may take.
        public var timeout: Double = 10
        public var ytDLPPath = "yt-dlp"
        public var ytDLPConcurrency = 4
        /// Days of check history kept.
        public var historyDays: Double = 7
        /// Seconds offline after which a stream is archived (when the auto_archive flag is on).
        public var autoArchiveAfter: Double = 86_400

        public init() {}
    }

    /// Settings of the `Recorder` module.
    public struct RecorderSettings: Sendable, Equatable {
        /// Segment downloads running at once, over every recording.
        public var concurrency = 64
        /// Recordings one instance runs at most.
        public var maxRecordings = 1_000
        /// Seconds of recording kept when a recording does not say.
        public var defaultRetention: Double = 86_400
        /// The recording `/live/stream.m3u8` and `/start/…` serve (nil: the most recently started).
        public var defaultRecording: String?
        /// Seconds between preview thumbnails of one recording (0: no thumbnails).
        public var previewInterval: Double = 5
        /// Largest segment accepted, in bytes.
        public var maxSegmentBytes = 64 << 20
        /// Seconds between retention sweeps.
        public var retentionInterval: Double = 30
        /// Bytes of the newest segments kept in memory for serving (0: none).
        public var segmentCacheBytes = 64 << 20
        /// Seconds a recording lease lasts (renewed at a third of it).
        public var leaseDuration: Double = 30
        public var ytDLPPath = "yt-dlp"
        public var ffmpegPath = "ffmpeg"
        public var ffprobePath = "ffprobe"

        public init() {}
    }

    /// The settings, in the order `--help` and the README list them. Each is a flag (`--name`) and a
    /// `STREAMHUB_NAME` environment variable; the flag wins.
    public static let settings: [Setting] = [
        Setting("host", default: "127.0.0.1", help: "Address the HTTP server binds to; 0.0.0.0 listens on every interface."),
        Setting("port", default: "8027", help: "HTTP port (WebSockets share it)."),
        Setting("grpc-port", default: "50050", help: "gRPC port."),
        Setting("data-dir", default: "./data", help: "Directory for the SQLite database, secrets and recordings."),
        Setting("database-url", default: "sqlite://<data dir>/streamhub.sqlite", help: "sqlite://PATH, or postgres://USER:PASS@HOST:PORT/DB to scale out."),
        Setting("service-keys", default: "", help: "Comma-separated keys accepted in X-Service-Key / gRPC x-service-key."),
        Setting("jwt-secret", default: "generated once, kept in the data dir", help: "Secret that signs login tokens (at least 32 characters)."),
        Setting("allow-private-sources", default: "false", help: "Allow fetching URLs on loopback/private networks (tests only)."),
        Setting("log-level", default: "info", help: "trace, debug, info, notice, warning, error or critical."),
        Setting("log-format", default: "text", help: "text, or json for one JSON object a line."),
        Setting("instance-id", default: "host name + random suffix", help: "Name of this instance in logs and on the backplane."),
        Setting("max-body-size", default: "1048576", help: "Largest HTTP request body in bytes."),
        Setting("metrics-token", default: "", help: "Bearer token (16+ characters) that opens /metrics and /health details from any address."),
        Setting("metrics-networks", default: "loopback and private networks",
                help: "Comma-separated CIDRs that read /metrics and /health details without the token; 'none' for no network."),
        Setting("advertise-url", default: "http://<host>:<port> (the machine's name for 0.0.0.0)",
                help: "The URL other instances reach this one at; they fetch the recording segments on this instance's disk through it."),
        Setting("backup-interval", default: "86400", help: "Seconds between scheduled backups (taken by one instance); 0 turns them off."),
        Setting("backup-keep", default: "7", help: "Scheduled backups kept; older ones are deleted."),
        Setting("backup-dir", default: "<data dir>/backups", help: "Directory of the scheduled backups."),
        Setting("trusted-proxies", default: "none",
                help: "Comma-separated CIDRs of reverse proxies (nginx) whose X-Forwarded-For names the client, for sign-in limits and logs."),
        Setting("job-lease", default: "15", help: "Seconds the maintenance lease lasts (the instance holding it runs scheduled jobs); another instance takes over within this when it dies."),
        Setting("ws-max-frame-size", default: "65536", help: "Largest inbound WebSocket frame in bytes."),
        Setting("ws-max-queued-bytes", default: "262144", help: "Outbound bytes a WebSocket may fall behind before it is closed (1013)."),
        Setting("ws-ping-interval", default: "30", help: "Seconds between WebSocket pings; a client that misses pongs is closed."),
        Setting("shutdown-timeout", default: "10", help: "Seconds a graceful shutdown may take."),
        Setting("write-rate-limit", default: "600", help: "Writes per minute allowed to each user or API key."),
        Setting("login-failure-limit", default: "5", help: "Failed sign-ins per minute allowed from one IP address, then 429."),
        Setting("bcrypt-cost", default: "12", help: "bcrypt cost (work factor) of password hashes, 10 to 16."),
        Setting("overlay-grace-period", default: "300", help: "Seconds a rotated-out overlay key stays valid."),
        Setting("caption-retention", default: "300", help: "Seconds stored captions are kept before the cleaner deletes them."),
        Setting("access-log-retention-days", default: "30", help: "Days overlay access-log entries are kept."),
        Setting("discovery-extra-hosts", default: "", help: "Comma-separated hosts whose every link counts as a stream (e.g. an Owncast server)."),
        Setting("discovery-places", default: "", help: "Places the location parser knows besides US states: \"Kenosha, WI; Portland, OR\"."),
        Setting("twitch-channels", default: "", help: "Comma-separated Twitch channels whose chat is read for stream links (empty: off)."),
        Setting("twitch-irc-url", default: "ircs://irc.chat.twitch.tv:6697", help: "Twitch chat server, ircs:// (TLS) or irc://."),
        Setting("twitch-nick", default: "anonymous justinfan", help: "Nick for Twitch chat (needs twitch-oauth-token)."),
        Setting("twitch-oauth-token", default: "", help: "OAuth token for Twitch chat; anonymous when empty."),
        Setting("discord-token", default: "", help: "Discord bot token; the Discord connector runs when set."),
        Setting("discord-channels", default: "", help: "Comma-separated Discord channel ids to read (empty: every channel the bot sees)."),
        Setting("discord-gateway-url", default: "wss://gateway.discord.gg/?v=10&encoding=json", help: "Discord gateway URL."),
        Setting("discord-intents", default: "33281", help: "Gateway intents (GUILDS | GUILD_MESSAGES | MESSAGE_CONTENT)."),
        Setting("status-checks", default: "true", help: "Run the periodic live/offline checks."),
        Setting("status-live-interval", default: "300", help: "Seconds between checks of streams that are live."),
        Setting("status-interval", default: "900", help: "Seconds between checks of the other streams."),
        Setting("status-platform-intervals", default: "", help: "Per-platform seconds between checks, e.g. youtube=600,hls=60."),
        Setting("status-concurrency", default: "64", help: "Status checks running at once."),
        Setting("status-host-rate", default: "5", help: "Status-check requests per second to one host:port."),
        Setting("status-timeout", default: "10", help: "Seconds one status check may take."),
        Setting("status-ytdlp-path", default: "yt-dlp", help: "yt-dlp executable for platform pages."),
        Setting("status-ytdlp-concurrency", default: "4", help: "yt-dlp processes running at once."),
        Setting("status-history-days", default: "7", help: "Days of status-check history kept."),
        Setting("auto-archive-after", default: "86400", help: "Seconds offline after which a stream is archived, when the auto_archive flag is on."),
        Setting("recorder-concurrency", default: "64", help: "Segment downloads running at once over every recording."),
        Setting("recorder-max-recordings", default: "1000", help: "Recordings one instance runs at most."),
        Setting("recorder-retention", default: "86400", help: "Seconds of recording kept when a recording does not say."),
        Setting("recorder-default-recording", default: "", help: "Recording id served at /live/stream.m3u8 and /start/…; empty: the most recently started."),
        Setting("recorder-preview-interval", default: "5", help: "Seconds between preview thumbnails of a recording; 0 turns them off."),
        Setting("recorder-max-segment-bytes", default: "67108864", help: "Largest segment a recording accepts, in bytes."),
        Setting("recorder-retention-interval", default: "30", help: "Seconds between retention sweeps."),
        Setting("recorder-segment-cache", default: "67108864", help: "Bytes of the newest segments kept in memory for serving; 0 turns the cache off."),
        Setting("recorder-lease", default: "30", help: "Seconds a recording's lease lasts; another instance takes a recording over when it lapses."),
        Setting("ytdlp-path", default: "yt-dlp", help: "yt-dlp executable the recorder resolves page URLs with."),
        Setting("ffmpeg-path", default: "ffmpeg", help: "ffmpeg executable (exports, thumbnails)."),
        Setting("ffprobe-path", default: "ffprobe", help: "ffprobe executable (codec, resolution, frame rate)."),
        Setting("stt-max-transcribers", default: "4", help: "Transcribers (speech to text) one instance runs at most."),
        Setting("stt-commands", default: "", help: "Command engines: 'name=program arg …' separated by ';'. Each reads 16 kHz mono s16le PCM on stdin and writes JSON lines {\"text\",\"is_final\"}."),
        Setting("stt-python", default: "python3", help: "Python 3 that runs the built-in PocketSphinx engine (pip install pocketsphinx)."),
    ]

    /// One configuration setting: its flag name, default and help text.
    public struct Setting: Sendable {
        public let name: String
        public let defaultDescription: String
        public let help: String

        init(_ name: String, default defaultDescription: String, help: String) {
            self.name = name
            self.defaultDescription = defaultDescription
            self.help = help
        }

        /// The environment variable of this setting, e.g. `STREAMHUB_DATA_DIR`.
        public var environmentName: String {
            "STREAMHUB_" + name.uppercased().replacingOccurrences(of: "-", with: "_")
        }
    }

    /// Builds the configuration from flags (by setting name, without dashes) and the environment.
    ///
    /// - Throws: ``ConfigurationError`` naming the first invalid setting.
    public static func resolve(
        flags: [String: String] = [:],
        environment: [String: String] = ProcessInfo.processInfo.environment
    ) throws(ConfigurationError) -> HubConfiguration {
        let source = SettingSource(flags: flags, environment: environment)
        for name in flags.keys where !settings.contains(where: { $0.name == name }) {
            throw ConfigurationError(setting: "--\(name)", message: "is not a known setting")
        }

        let host = try source.string("host") ?? "127.0.0.1"
        guard !host.isEmpty, !host.contains("/"), !host.contains(" ") else {
            throw source.invalid("host", "must be a host name or IP address")
        }
        let port = try source.integer("port", in: 0...65535) ?? 8027
        let grpcPort = try source.integer("grpc-port", in: 0...65535) ?? 50050
        let dataDirectory = try source.string("data-dir") ?? "./data"
        guard !dataDirectory.isEmpty else { throw source.invalid("data-dir", "must not be empty") }

        let database: Database
        if let url = try source.string("database-url") {
            database = try parseDatabaseURL(url, source: source)
        } else {
            database = .sqlite(path: (dataDirectory as NSString).appendingPathComponent("streamhub.sqlite"))
        }

        let serviceKeys = (try source.string("service-keys") ?? "")
            .split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        for key in serviceKeys where key.utf8.count < 16 {
            _ = key
            throw source.invalid("service-keys", "each key must be at least 16 characters")
        }
        let jwtSecret = try source.string("jwt-secret")
        if let jwtSecret, jwtSecret.utf8.count < 32 {
            throw source.invalid("jwt-secret", "must be at least 32 characters")
        }
        let allowPrivate = try source.boolean("allow-private-sources") ?? false

        let logLevel: Logger.Level
        if let raw = try source.string("log-level") {
            guard let level = Logger.Level(rawValue: raw.lowercased()) else {
                throw source.invalid("log-level", "must be one of trace, debug, info, notice, warning, error, critical")
            }
            logLevel = level
        } else {
            logLevel = .info
        }
        let logFormat: LogFormat
        if let raw = try source.string("log-format") {
            guard let format = LogFormat(rawValue: raw.lowercased()) else {
                throw source.invalid("log-format", "must be text or json")
            }
            logFormat = format
        } else {
            logFormat = .text
        }
        let instanceID = try source.string("instance-id") ?? Self.defaultInstanceID()
        guard instanceID.utf8.count <= 64, instanceID.allSatisfy({ $0.isLetter || $0.isNumber || "-_.".contains($0) }) else {
            throw source.invalid("instance-id", "must be at most 64 letters, digits, '-', '_' or '.'")
        }

        let metricsToken = try source.string("metrics-token").flatMap { $0.isEmpty ? nil : $0 }
        if let metricsToken, metricsToken.utf8.count < 16 { throw source.invalid("metrics-token", "must be at least 16 characters") }
        var metricsNetworks = IPNetwork.loopbackAndPrivate
        if let raw = try source.string("metrics-networks") {
            if raw.trimmingCharacters(in: .whitespaces).lowercased() == "none" {
                metricsNetworks = []
            } else {
                metricsNetworks = []
                for entry in list(raw) {
                    guard let network = IPNetwork(entry) else { throw source.invalid("metrics-networks", "'\(entry)' is not an address or CIDR block") }
                    metricsNetworks.append(network)
                }
            }
        }

        var configuration = HubConfiguration(
            host: host,
            port: port,
            grpcPort: grpcPort,
            dataDirectory: dataDirectory,
            database: database,
            serviceKeys: serviceKeys,
            jwtSecret: jwtSecret,
            allowPrivateSources: allowPrivate,
            logLevel: logLevel,
            logFormat: logFormat,
            instanceID: instanceID,
            maxBodySize: try source.integer("max-body-size", in: 1024...(256 << 20)) ?? (1 << 20),
            webSocketMaxFrameSize: try source.integer("ws-max-frame-size", in: 125...(16 << 20)) ?? (64 << 10),
            webSocketMaxQueuedBytes: try source.integer("ws-max-queued-bytes", in: 4096...(64 << 20)) ?? (256 << 10),
            webSocketPingInterval: .seconds(try source.integer("ws-ping-interval", in: 1...3600) ?? 30),
            shutdownTimeout: .seconds(try source.integer("shutdown-timeout", in: 1...600) ?? 10),
            writeRateLimit: try source.integer("write-rate-limit", in: 1...1_000_000) ?? 600,
            loginFailureLimit: try source.integer("login-failure-limit", in: 1...10_000) ?? 5,
            bcryptCost: try source.integer("bcrypt-cost", in: 10...16) ?? 12,
            overlayGracePeriod: Double(try source.integer("overlay-grace-period", in: 0...86_400) ?? 300),
            captionRetention: Double(try source.integer("caption-retention", in: 10...31_536_000) ?? 300),
            accessLogRetention: Double(try source.integer("access-log-retention-days", in: 1...3650) ?? 30) * 86_400,
            discovery: try resolveDiscovery(source),
            status: try resolveStatus(source),
            recorder: try resolveRecorder(source),
            transcription: try resolveTranscription(source)
        )
        configuration.metricsToken = metricsToken
        configuration.metricsNetworks = metricsNetworks
        configuration.jobLease = Double(try source.integer("job-lease", in: 3...3_600) ?? 15)
        for entry in list(try source.string("trusted-proxies")) {
            guard let network = IPNetwork(entry) else { throw source.invalid("trusted-proxies", "'\(entry)' is not an address or CIDR block") }
            configuration.trustedProxies.append(network)
        }
        configuration.backupInterval = Double(try source.integer("backup-interval", in: 0...31_536_000) ?? 86_400)
        configuration.backupKeep = try source.integer("backup-keep", in: 1...1_000) ?? 7
        if let directory = try source.string("backup-dir"), !directory.isEmpty { configuration.backupDirectory = directory }
        if let url = try source.string("advertise-url"), !url.isEmpty {
            guard let components = URLComponents(string: url), ["http", "https"].contains(components.scheme ?? ""), components.host?.isEmpty == false,
                  components.path.isEmpty || components.path == "/", components.query == nil else {
                throw source.invalid("advertise-url", "must be http(s)://host:port")
            }
            configuration.advertiseURL = url.hasSuffix("/") ? String(url.dropLast()) : url
        }
        return configuration
    }

    static func list(_ text: String?) -> [String] {
        (text ?? "").split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
    }

    static func resolveDiscovery(_ source: SettingSource) throws(ConfigurationError) -> DiscoverySettings {
        var settings = DiscoverySettings()
        settings.extraHosts = list(try source.string("discovery-extra-hosts")).map { $0.lowercased() }
        settings.places = try source.string("discovery-places") ?? ""
        settings.twitchChannels = list(try source.string("twitch-channels")).map { $0.lowercased().trimmingCharacters(in: CharacterSet(charactersIn: "#")) }
        for channel in settings.twitchChannels where !(1...25).contains(channel.count) || !channel.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "_" }) {
            throw source.invalid("twitch-channels", "'\(channel)' is not a Twitch channel name")
        }
        if let url = try source.string("twitch-irc-url") {
            guard url.hasPrefix("irc://") || url.hasPrefix("ircs://") else { throw source.invalid("twitch-irc-url", "must start with ircs:// or irc://") }
            settings.twitchIRCURL = url
        }
        settings.twitchNick = try source.string("twitch-nick").flatMap { $0.isEmpty ? nil : $0.lowercased() }
        settings.twitchOAuthToken = try source.string("twitch-oauth-token").flatMap { $0.isEmpty ? nil : $0 }
        if settings.twitchNick != nil && settings.twitchOAuthToken == nil {
            throw source.invalid("twitch-nick", "needs twitch-oauth-token (leave both unset to read anonymously)")
        }
        settings.discordToken = try source.string("discord-token").flatMap { $0.isEmpty ? nil : $0 }
        settings.discordChannels = list(try source.string("discord-channels"))
        for channel in settings.discordChannels where !channel.allSatisfy(\.isNumber) {
            throw source.invalid("discord-channels", "'\(channel)' is not a Discord channel id (digits)")
        }
        if let url = try source.string("discord-gateway-url") {
            guard url.hasPrefix("wss://") || url.hasPrefix("ws://") else { throw source.invalid("discord-gateway-url", "must start with wss:// or ws://") }
            settings.discordGatewayURL = url
        }
        settings.discordIntents = try source.integer("discord-intents", in: 0...(1 << 26)) ?? settings.discordIntents
        return settings
    }

    static func resolveStatus(_ source: SettingSource) throws(ConfigurationError) -> StatusSettings {
        var settings = StatusSettings()
        settings.enabled = try source.boolean("status-checks") ?? true
        settings.liveInterval = Double(try source.integer("status-live-interval", in: 5...86_400) ?? 300)
        settings.interval = Double(try source.integer("status-interval", in: 5...604_800) ?? 900)
        for entry in list(try source.string("status-platform-intervals")) {
            let parts = entry.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            guard parts.count == 2, let seconds = Double(parts[1]), (5...604_800).contains(seconds), !parts[0].isEmpty else {
                throw source.invalid("status-platform-intervals", "must look like youtube=600,hls=60 (5 to 604800 seconds)")
            }
            settings.platformIntervals[parts[0].lowercased()] = seconds
        }
        settings.concurrency = try source.integer("status-concurrency", in: 1...4096) ?? 64
        if let raw = try source.string("status-host-rate") {
            guard let rate = Double(raw), rate > 0, rate <= 10_000 else { throw source.invalid("status-host-rate", "must be a number of requests per second, above 0") }
            settings.hostRate = rate
        }
        settings.timeout = Double(try source.integer("status-timeout", in: 1...300) ?? 10)
        settings.ytDLPPath = try source.string("status-ytdlp-path") ?? "yt-dlp"
        settings.ytDLPConcurrency = try source.integer("status-ytdlp-concurrency", in: 1...64) ?? 4
        settings.historyDays = Double(try source.integer("status-history-days", in: 1...3650) ?? 7)
        settings.autoArchiveAfter = Double(try source.integer("auto-archive-after", in: 60...31_536_000) ?? 86_400)
        return settings
    }

    static func resolveRecorder(_ source: SettingSource) throws(ConfigurationError) -> RecorderSettings {
        var settings = RecorderSettings()
        settings.concurrency = try source.integer("recorder-concurrency", in: 1...4096) ?? 64
        settings.maxRecordings = try source.integer("recorder-max-recordings", in: 1...100_000) ?? 1_000
        settings.defaultRetention = Double(try source.integer("recorder-retention", in: 60...315_360_000) ?? 86_400)
        if let id = try source.string("recorder-default-recording"), !id.isEmpty {
            guard id.count == 32, id.allSatisfy(\.isHexDigit) else { throw source.invalid("recorder-default-recording", "must be a recording id (32 hex digits)") }
            settings.defaultRecording = id.lowercased()
        }
        settings.previewInterval = Double(try source.integer("recorder-preview-interval", in: 0...3_600) ?? 5)
        settings.maxSegmentBytes = try source.integer("recorder-max-segment-bytes", in: 65_536...(1 << 30)) ?? (64 << 20)
        settings.retentionInterval = Double(try source.integer("recorder-retention-interval", in: 1...3_600) ?? 30)
        settings.segmentCacheBytes = try source.integer("recorder-segment-cache", in: 0...(64 << 30)) ?? (64 << 20)
        settings.leaseDuration = Double(try source.integer("recorder-lease", in: 6...3_600) ?? 30)
        settings.ytDLPPath = try source.string("ytdlp-path") ?? "yt-dlp"
        settings.ffmpegPath = try source.string("ffmpeg-path") ?? "ffmpeg"
        settings.ffprobePath = try source.string("ffprobe-path") ?? "ffprobe"
        return settings
    }

    static func resolveTranscription(_ source: SettingSource) throws(ConfigurationError) -> TranscriptionSettings {
        var settings = TranscriptionSettings()
        settings.maxTranscribers = try source.integer("stt-max-transcribers", in: 0...1_000) ?? 4
        settings.pythonPath = try source.string("stt-python") ?? "python3"
        for entry in (try source.string("stt-commands") ?? "").split(separator: ";") {
            let trimmed = entry.trimmingCharacters(in: .whitespaces)
            guard !trimmed.isEmpty else { continue }
            guard let equals = trimmed.firstIndex(of: "=") else { throw source.invalid("stt-commands", "'\(trimmed)' must be name=program args") }
            let name = trimmed[..<equals].trimmingCharacters(in: .whitespaces)
            let words = trimmed[trimmed.index(after: equals)...].split(separator: " ").map(String.init)
            guard !name.isEmpty, name.count <= 40, name.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == "_") }),
                  name != "pocketsphinx" else {
                throw source.invalid("stt-commands", "engine names are letters, digits, - and _ (not 'pocketsphinx'): '\(name)'")
            }
            guard !words.isEmpty else { throw source.invalid("stt-commands", "engine '\(name)' has no program") }
            settings.commands[name] = words
        }
        return settings
    }

    /// This server's own base URL for child processes on this machine (ffmpeg reading recordings over loopback).
    public var loopbackURL: String {
        let address = host == "0.0.0.0" || host == "::" || host.hasPrefix("/") ? "127.0.0.1" : host
        return "http://\(address.contains(":") ? "[\(address)]" : address):\(port)"
    }

    /// A configuration for tests: a private data directory, port 0 and private sources allowed.
    public static func testing(dataDirectory: String, database: Database? = nil) -> HubConfiguration {
        HubConfiguration(
            host: "127.0.0.1", port: 0, grpcPort: 0, dataDirectory: dataDirectory,
            database: database ?? .sqlite(path: (dataDirectory as NSString).appendingPathComponent("streamhub.sqlite")),
            serviceKeys: ["test-service-key-0123456789"], jwtSecret: String(repeating: "s", count: 32),
            allowPrivateSources: true, logLevel: .warning, logFormat: .text,
            instanceID: "test-" + String(UInt32.random(in: 0...UInt32.max), radix: 16),
            maxBodySize: 1 << 20, webSocketMaxFrameSize: 64 << 10, webSocketMaxQueuedBytes: 256 << 10,
            webSocketPingInterval: .seconds(30), shutdownTimeout: .seconds(10),
            writeRateLimit: 100_000, loginFailureLimit: 5, bcryptCost: 4,
            overlayGracePeriod: 300, captionRetention: 300, accessLogRetention: 30 * 86_400,
            // Periodic status checks would write to every test's streams; tests that want them turn them on.
            status: { var status = StatusSettings(); status.enabled = false; return status }()
        )
    }

    static func parseDatabaseURL(_ url: String, source: SettingSource) throws(ConfigurationError) -> Database {
        if url.hasPrefix("sqlite://") {
            let path = String(url.dropFirst("sqlite://".count))
            guard !path.isEmpty else { throw source.invalid("database-url", "sqlite:// needs a file path") }
            return .sqlite(path: path)
        }
        if url.hasPrefix("postgres://") || url.hasPrefix("postgresql://") {
            guard let components = URLComponents(string: url), let host = components.host, !host.isEmpty,
                  components.path.count > 1
            else {
                throw source.invalid("database-url", "must look like postgres://USER:PASSWORD@HOST:PORT/DATABASE")
            }
            return .postgres(url: url)
        }
        throw source.invalid("database-url", "must start with sqlite:// or postgres://")
    }

    static func defaultInstanceID() -> String {
        let host = ProcessInfo.processInfo.hostName
            .split(separator: ".").first.map(String.init)?
            .filter { $0.isLetter || $0.isNumber || $0 == "-" } ?? "streamhub"
        let suffix = String(UInt32.random(in: 0...UInt32.max), radix: 16)
        return "\(host.isEmpty ? "streamhub" : String(host.prefix(40)))-\(suffix)"
    }
}
