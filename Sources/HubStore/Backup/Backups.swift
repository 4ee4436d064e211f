import Foundation
import HubCore
import Logging
import ServiceLifecycle
import SQLKit

/// Consistent backups of a running deployment and their restore into an empty one.
///
/// A backup is a directory: the database snapshot (`streamhub.sqlite`, made with SQLite's `VACUUM INTO` —
/// one consistent read while the server keeps writing — or `streamhub.pgdump`, `pg_dump`'s custom format,
/// one consistent transaction), the JWT signing secret when it lives in the data directory (`jwt-secret`, so
/// tokens and sessions stay valid), and `manifest.json` saying what it holds. The recording index is in the
/// database; the segment files are not copied (they are media, and expire).
public struct Backups: Sendable {
    public struct Failure: Error, CustomStringConvertible {
        public let description: String
        init(_ description: String) { self.description = description }
    }

    public struct Manifest: Codable, Sendable, Equatable {
        public var format = 1
        public var kind: String
        public var createdAt: String
        public var instance: String
        public var files: [String]
        enum CodingKeys: String, CodingKey { case format, kind, createdAt = "created_at", instance, files }
    }

    static let sqliteFile = "streamhub.sqlite"
    static let postgresFile = "streamhub.pgdump"
    static let secretFile = "jwt-secret"
    static let manifestFile = "manifest.json"

    let database: HubDatabase
    let configuration: HubConfiguration

    public init(database: HubDatabase, configuration: HubConfiguration) {
        self.database = database
        self.configuration = configuration
    }

    /// Writes a backup into `directory` (created; it must be empty or absent).
    @discardableResult
    public func take(into directory: String) async throws -> Manifest {
        let manager = FileManager.default
        if manager.fileExists(atPath: directory) {
            guard (try manager.contentsOfDirectory(atPath: directory)).isEmpty else { throw Failure("\(directory) is not empty; back up into a new directory") }
        } else {
            try manager.createDirectory(atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        }
        var files: [String] = []
        switch configuration.database {
        case .sqlite:
            let target = (directory as NSString).appendingPathComponent(Self.sqliteFile)
            try await database.sql.raw("VACUUM INTO \(bind: target)").run()
            files.append(Self.sqliteFile)
        case .postgres(let url):
            let target = (directory as NSString).appendingPathComponent(Self.postgresFile)
            let result: ChildProcess.Output
            do {
                result = try await ChildProcess.run("pg_dump", ["--format=custom", "--no-owner", "--no-privileges", "--file=\(target)", "--dbname=\(url)"],
                                                    timeout: .seconds(3600), maxOutput: 1 << 20)
            } catch ChildProcess.Failure.notFound {
                throw Failure("pg_dump is not installed (apt install postgresql-client); or run pg_dump --format=custom yourself")
            }
            guard !result.timedOut, result.status == 0 else {
                throw Failure("pg_dump failed: " + String(decoding: result.stderr.prefix(500), as: UTF8.self))
            }
            files.append(Self.postgresFile)
        }
        let secret = (configuration.dataDirectory as NSString).appendingPathComponent(Self.secretFile)
        if configuration.jwtSecret == nil, manager.fileExists(atPath: secret) {
            let copy = (directory as NSString).appendingPathComponent(Self.secretFile)
            try manager.copyItem(atPath: secret, toPath: copy)
            try manager.setAttributes([.posixPermissions: 0o600], ofItemAtPath: copy)
            files.append(Self.secretFile)
        }
        let manifest = Manifest(kind: database.kind.rawValue, createdAt: Timestamp.iso8601(Timestamp.now()), instance: configuration.instanceID, files: files)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try encoder.encode(manifest).write(to: URL(fileURLWithPath: (directory as NSString).appendingPathComponent(Self.manifestFile)))
        return manifest
    }

    /// Restores the backup in `directory` into the configured database, which must be empty (a new data
    /// directory, or a PostgreSQL database without StreamHub's tables), and its JWT secret into the data
    /// directory. Start the server afterwards: it applies any newer migrations.
    public static func restore(from directory: String, configuration: HubConfiguration, logger: Logger) async throws -> Manifest {
        let manager = FileManager.default
        let manifestPath = (directory as NSString).appendingPathComponent(manifestFile)
        guard let data = manager.contents(atPath: manifestPath), let manifest = try? JSONDecoder().decode(Manifest.self, from: data) else {
            throw Failure("\(directory) holds no StreamHub backup (no readable manifest.json)")
        }
        guard manifest.format == 1 else { throw Failure("backup format \(manifest.format) is newer than this StreamHub understands") }
        switch configuration.database {
        case .sqlite(let path):
            guard manifest.kind == "sqlite" else { throw Failure("this is a \(manifest.kind) backup; restore it into a \(manifest.kind) database") }
            guard !manager.fileExists(atPath: path) else { throw Failure("\(path) exists; restore into an empty data directory") }
            try manager.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            try manager.copyItem(atPath: (directory as NSString).appendingPathComponent(sqliteFile), toPath: path)
        case .postgres(let url):
            guard manifest.kind == "postgres" else { throw Failure("this is a \(manifest.kind) backup; restore it into a \(manifest.kind) database") }
            let database = try HubDatabase.open(configuration.database, logger: logger)
            let taken: Bool
            do {
                taken = try await database.sql.raw("SELECT to_regclass('public.streams') IS NOT NULL AS taken").first()?.decode(column: "taken", as: Bool.self) ?? false
            } catch {
                await database.shutdown()
                throw error
            }
            await database.shutdown()
            guard !taken else { throw Failure("the database already holds StreamHub's tables; restore into an empty database") }
            let result: ChildProcess.Output
            do {
                result = try await ChildProcess.run("pg_restore", ["--no-owner", "--no-privileges", "--exit-on-error", "--dbname=\(url)",
                                                                   (directory as NSString).appendingPathComponent(postgresFile)],
                                                    timeout: .seconds(3600), maxOutput: 1 << 20)
            } catch ChildProcess.Failure.notFound {
                throw Failure("pg_restore is not installed (apt install postgresql-client)")
            }
            guard !result.timedOut, result.status == 0 else {
                throw Failure("pg_restore failed: " + String(decoding: result.stderr.prefix(500), as: UTF8.self))
            }
        }
        if manifest.files.contains(secretFile) {
            let target = (configuration.dataDirectory as NSString).appendingPathComponent(secretFile)
            if manager.fileExists(atPath: target) {
                logger.warning("the data directory has a JWT secret already; kept it (tokens from the backup's deployment will not work)")
            } else {
                try manager.createDirectory(atPath: configuration.dataDirectory, withIntermediateDirectories: true)
                try manager.copyItem(atPath: (directory as NSString).appendingPathComponent(secretFile), toPath: target)
                try manager.setAttributes([.posixPermissions: 0o600], ofItemAtPath: target)
            }
        }
        return manifest
    }
}

/// Takes a backup every `interval` on the instance holding the maintenance lease, into
/// `<directory>/backup-YYYYMMDD-HHMMSS`, and keeps the newest `keep`.
public struct ScheduledBackups: Service {
    let backups: Backups
    let directory: String
    let interval: Double
    let keep: Int
    let logger: Logger

    public init(backups: Backups, directory: String, interval: Double, keep: Int, logger: Logger) {
        self.backups = backups
        self.directory = directory
        self.interval = interval
        self.keep = keep
        self.logger = logger
    }

    public func run() async throws {
        guard interval > 0 else { return try await gracefulShutdown() }
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: .milliseconds(Int64(interval * 1000))) }
            guard !Task.isCancelled && !Task.isShuttingDownGracefully else { break }
            guard backups.database.maintenance.isHeld else { continue }
            await once()
        }
    }

    func once() async {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "yyyyMMdd-HHmmss"
        let target = (directory as NSString).appendingPathComponent("backup-" + formatter.string(from: Date()))
        do {
            try await backups.take(into: target)
            logger.notice("backup written", metadata: ["path": "\(target)"])
        } catch {
            logger.error("backup failed", metadata: ["path": "\(target)", "error": "\(error)"])
            try? FileManager.default.removeItem(atPath: target)
            return
        }
        let all = ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []).filter { $0.hasPrefix("backup-") }.sorted()
        for old in all.dropLast(keep) {
            try? FileManager.default.removeItem(atPath: (directory as NSString).appendingPathComponent(old))
        }
    }
}
