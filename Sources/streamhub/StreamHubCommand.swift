import ArgumentParser
import Foundation
import HubCore
import HubStore
import Logging
import Registry
import StreamHub

@main
struct StreamHubCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "streamhub",
        abstract: "StreamHub: discover, register, record, show and push live streams, from one server.",
        discussion: """
            Every option can also be set by an environment variable: --data-dir is STREAMHUB_DATA_DIR, and so on.
            A flag wins over its variable. With no configuration at all, `streamhub serve` listens on
            127.0.0.1:8027 and keeps its SQLite database under ./data.
            """,
        version: streamHubVersion,
        subcommands: [Serve.self, Migrate.self, Backup.self, Restore.self, UserCommand.self, APIKeyCommand.self, OverlayCommand.self, ProgramCommand.self, TranscriberCommand.self],
        defaultSubcommand: Serve.self
    )
}

/// The configuration options shared by every subcommand; each is also a STREAMHUB_* variable.
struct ConfigurationOptions: ParsableArguments {
    @Option(help: ConfigurationOptions.help("host")) var host: String?
    @Option(help: ConfigurationOptions.help("port")) var port: String?
    @Option(help: ConfigurationOptions.help("grpc-port")) var grpcPort: String?
    @Option(help: ConfigurationOptions.help("data-dir")) var dataDir: String?
    @Option(help: ConfigurationOptions.help("database-url")) var databaseUrl: String?
    @Option(help: ConfigurationOptions.help("service-keys")) var serviceKeys: String?
    @Option(help: ConfigurationOptions.help("jwt-secret")) var jwtSecret: String?
    @Option(help: ConfigurationOptions.help("allow-private-sources")) var allowPrivateSources: String?
    @Option(help: ConfigurationOptions.help("log-level")) var logLevel: String?
    @Option(help: ConfigurationOptions.help("log-format")) var logFormat: String?
    @Option(help: ConfigurationOptions.help("instance-id")) var instanceId: String?
    @Option(help: ConfigurationOptions.help("max-body-size")) var maxBodySize: String?
    @Option(help: ConfigurationOptions.help("job-lease")) var jobLease: String?
    @Option(help: ConfigurationOptions.help("advertise-url")) var advertiseUrl: String?
    @Option(help: ConfigurationOptions.help("trusted-proxies")) var trustedProxies: String?
    @Option(help: ConfigurationOptions.help("backup-interval")) var backupInterval: String?
    @Option(help: ConfigurationOptions.help("backup-keep")) var backupKeep: String?
    @Option(help: ConfigurationOptions.help("backup-dir")) var backupDir: String?
    @Option(help: ConfigurationOptions.help("ws-max-frame-size")) var wsMaxFrameSize: String?
    @Option(help: ConfigurationOptions.help("ws-max-queued-bytes")) var wsMaxQueuedBytes: String?
    @Option(help: ConfigurationOptions.help("ws-ping-interval")) var wsPingInterval: String?
    @Option(help: ConfigurationOptions.help("shutdown-timeout")) var shutdownTimeout: String?
    @Option(help: ConfigurationOptions.help("write-rate-limit")) var writeRateLimit: String?
    @Option(help: ConfigurationOptions.help("login-failure-limit")) var loginFailureLimit: String?
    @Option(help: ConfigurationOptions.help("bcrypt-cost")) var bcryptCost: String?
    @Option(help: ConfigurationOptions.help("overlay-grace-period")) var overlayGracePeriod: String?
    @Option(help: ConfigurationOptions.help("caption-retention")) var captionRetention: String?
    @Option(help: ConfigurationOptions.help("access-log-retention-days")) var accessLogRetentionDays: String?
    @Option(help: ConfigurationOptions.help("discovery-extra-hosts")) var discoveryExtraHosts: String?
    @Option(help: ConfigurationOptions.help("discovery-places")) var discoveryPlaces: String?
    @Option(help: ConfigurationOptions.help("twitch-channels")) var twitchChannels: String?
    @Option(help: ConfigurationOptions.help("twitch-irc-url")) var twitchIrcUrl: String?
    @Option(help: ConfigurationOptions.help("twitch-nick")) var twitchNick: String?
    @Option(help: ConfigurationOptions.help("twitch-oauth-token")) var twitchOauthToken: String?
    @Option(help: ConfigurationOptions.help("discord-token")) var discordToken: String?
    @Option(help: ConfigurationOptions.help("discord-channels")) var discordChannels: String?
    @Option(help: ConfigurationOptions.help("discord-gateway-url")) var discordGatewayUrl: String?
    @Option(help: ConfigurationOptions.help("discord-intents")) var discordIntents: String?
    @Option(help: ConfigurationOptions.help("status-checks")) var statusChecks: String?
    @Option(help: ConfigurationOptions.help("status-live-interval")) var statusLiveInterval: String?
    @Option(help: ConfigurationOptions.help("status-interval")) var statusInterval: String?
    @Option(help: ConfigurationOptions.help("status-platform-intervals")) var statusPlatformIntervals: String?
    @Option(help: ConfigurationOptions.help("status-concurrency")) var statusConcurrency: String?
    @Option(help: ConfigurationOptions.help("status-host-rate")) var statusHostRate: String?
    @Option(help: ConfigurationOptions.help("status-timeout")) var statusTimeout: String?
    @Option(help: ConfigurationOptions.help("status-ytdlp-path")) var statusYtdlpPath: String?
    @Option(help: ConfigurationOptions.help("status-ytdlp-concurrency")) var statusYtdlpConcurrency: String?
    @Option(help: ConfigurationOptions.help("status-history-days")) var statusHistoryDays: String?
    @Option(help: ConfigurationOptions.help("auto-archive-after")) var autoArchiveAfter: String?

    static func help(_ name: String) -> ArgumentHelp {
        guard let setting = HubConfiguration.settings.first(where: { $0.name == name }) else { return "" }
        return ArgumentHelp("\(setting.help) [env: \(setting.environmentName); default: \(setting.defaultDescription.isEmpty ? "none" : setting.defaultDescription)]")
    }

    var flags: [String: String] {
        let pairs: [(String, String?)] = [
            ("host", host), ("port", port), ("grpc-port", grpcPort), ("data-dir", dataDir), ("database-url", databaseUrl),
            ("service-keys", serviceKeys), ("jwt-secret", jwtSecret), ("allow-private-sources", allowPrivateSources),
            ("log-level", logLevel), ("log-format", logFormat), ("instance-id", instanceId), ("max-body-size", maxBodySize),
            ("job-lease", jobLease), ("advertise-url", advertiseUrl), ("trusted-proxies", trustedProxies), ("backup-interval", backupInterval), ("backup-keep", backupKeep), ("backup-dir", backupDir), ("ws-max-frame-size", wsMaxFrameSize), ("ws-max-queued-bytes", wsMaxQueuedBytes), ("ws-ping-interval", wsPingInterval),
            ("shutdown-timeout", shutdownTimeout), ("write-rate-limit", writeRateLimit), ("login-failure-limit", loginFailureLimit),
            ("bcrypt-cost", bcryptCost), ("overlay-grace-period", overlayGracePeriod), ("caption-retention", captionRetention),
            ("access-log-retention-days", accessLogRetentionDays),
            ("discovery-extra-hosts", discoveryExtraHosts), ("discovery-places", discoveryPlaces), ("twitch-channels", twitchChannels), ("twitch-irc-url", twitchIrcUrl), ("twitch-nick", twitchNick), ("twitch-oauth-token", twitchOauthToken), ("discord-token", discordToken), ("discord-channels", discordChannels), ("discord-gateway-url", discordGatewayUrl), ("discord-intents", discordIntents), ("status-checks", statusChecks), ("status-live-interval", statusLiveInterval), ("status-interval", statusInterval), ("status-platform-intervals", statusPlatformIntervals), ("status-concurrency", statusConcurrency), ("status-host-rate", statusHostRate), ("status-timeout", statusTimeout), ("status-ytdlp-path", statusYtdlpPath), ("status-ytdlp-concurrency", statusYtdlpConcurrency), ("status-history-days", statusHistoryDays), ("auto-archive-after", autoArchiveAfter),
        ]
        return Dictionary(uniqueKeysWithValues: pairs.compactMap { name, value in value.map { (name, $0) } })
    }

    /// The validated configuration, or one line on standard error and exit code 2.
    func resolve() throws -> HubConfiguration {
        do {
            let configuration = try HubConfiguration.resolve(flags: flags)
            LoggingSetup.bootstrap(configuration)
            return configuration
        } catch {
            FileHandle.standardError.write(Data("streamhub: \(error)\n".utf8))
            throw ExitCode(2)
        }
    }
}

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Run the server (the default). Applies pending migrations first.")

    @OptionGroup var options: ConfigurationOptions

    func run() async throws {
        let configuration = try options.resolve()
        let application = try await buildApplication(configuration)
        try await application.runService()
    }
}

struct Backup: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write a consistent backup of the database (and the JWT secret) into a new directory, while the server runs.",
        discussion: "SQLite: an online snapshot (VACUUM INTO). PostgreSQL: pg_dump's custom format (needs postgresql-client). Segment files are not copied.")

    @OptionGroup var options: ConfigurationOptions
    @Argument(help: "The directory to write (new, or empty).") var directory: String

    func run() async throws {
        let configuration = try options.resolve()
        let logger = Logger(label: "streamhub.backup")
        let database = try HubDatabase.open(configuration.database, logger: logger)
        do {
            let manifest = try await Backups(database: database, configuration: configuration).take(into: directory)
            print("backup written to \(directory): " + manifest.files.joined(separator: ", "))
        } catch {
            await database.shutdown()
            FileHandle.standardError.write(Data("streamhub: backup failed: \(error)\n".utf8))
            throw ExitCode.failure
        }
        await database.shutdown()
    }
}

struct Restore: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Restore a backup into an empty data directory or an empty PostgreSQL database, then apply newer migrations.")

    @OptionGroup var options: ConfigurationOptions
    @Argument(help: "The backup directory.") var directory: String

    func run() async throws {
        let configuration = try options.resolve()
        let logger = Logger(label: "streamhub.restore")
        do {
            let manifest = try await Backups.restore(from: directory, configuration: configuration, logger: logger)
            let database = try HubDatabase.open(configuration.database, logger: logger)
            do {
                _ = try await Migrator(database: database, migrations: allStreamHubMigrations, logger: logger).migrate()
            } catch {
                await database.shutdown()
                throw error
            }
            await database.shutdown()
            print("restored the backup of \(manifest.createdAt) (\(manifest.kind), from \(manifest.instance)) into \(configuration.database.redacted)")
        } catch {
            FileHandle.standardError.write(Data("streamhub: restore failed: \(error)\n".utf8))
            throw ExitCode.failure
        }
    }
}

struct Migrate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Apply pending database migrations and exit.")

    @OptionGroup var options: ConfigurationOptions

    func run() async throws {
        let configuration = try options.resolve()
        let logger = Logger(label: "streamhub.migrate")
        let database = try HubDatabase.open(configuration.database, logger: logger)
        do {
            let applied = try await Migrator(database: database, migrations: allStreamHubMigrations, logger: logger).migrate()
            print(applied.isEmpty ? "database is up to date" : "applied: \(applied.joined(separator: ", "))")
        } catch {
            await database.shutdown()
            FileHandle.standardError.write(Data("streamhub: migration failed: \(error)\n".utf8))
            throw ExitCode.failure
        }
        await database.shutdown()
    }
}
