import ArgumentParser
import Foundation
import HubCore
import HubStore
import Logging
import Registry
import StreamHub

#if canImport(Glibc)
import Glibc
#endif

/// Opens the configured database (migrated), runs `body`, and closes it; errors become one line and exit 1.
func withDatabase(_ options: ConfigurationOptions, _ body: (HubDatabase) async throws -> Void) async throws {
    let configuration = try options.resolve()
    var logger = Logger(label: "streamhub.cli")
    logger.logLevel = .warning
    let database = try HubDatabase.open(configuration.database, logger: logger)
    do {
        try await Migrator(database: database, migrations: allStreamHubMigrations, logger: logger).migrate()
        try await body(database)
    } catch let error as HubError {
        await database.shutdown()
        FileHandle.standardError.write(Data("streamhub: \(error.message)\n".utf8))
        throw ExitCode.failure
    } catch let error as ExitCode {
        await database.shutdown()
        throw error
    } catch {
        await database.shutdown()
        FileHandle.standardError.write(Data("streamhub: \(error)\n".utf8))
        throw ExitCode.failure
    }
    await database.shutdown()
}

struct UserCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "user", abstract: "Create and list users.", subcommands: [Create.self, List.self])

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create a user. The password is asked for (twice) on the terminal, or read from standard input with --password-stdin.")

        @Option(help: "The user's email address (their sign-in name).") var email: String
        @Option(help: "viewer, editor or admin.") var role: String = "viewer"
        @Flag(help: "Read the password from the first line of standard input.") var passwordStdin = false
        @OptionGroup var options: ConfigurationOptions

        func run() async throws {
            let password = try readPassword(fromStdin: passwordStdin)
            let cost = try options.resolve().bcryptCost
            try await withDatabase(options) { database in
                print(try await RegistryAdmin.createUser(email: email, password: password, role: role, bcryptCost: cost, database: database))
            }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List users: id, email, role, created.")
        @OptionGroup var options: ConfigurationOptions

        func run() async throws {
            try await withDatabase(options) { database in
                let lines = try await RegistryAdmin.listUsers(database: database)
                print(lines.isEmpty ? "no users yet" : lines.joined(separator: "\n"))
            }
        }
    }
}

struct APIKeyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "apikey", abstract: "Create, list and revoke API keys for services (bots, checkers).",
        subcommands: [Create.self, List.self, Revoke.self])

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create an API key and print it (it is shown this once).")
        @Option(help: "A name for the key, e.g. the service that uses it.") var name: String
        @Option(help: "viewer, editor or admin.") var role: String = "viewer"
        @OptionGroup var options: ConfigurationOptions

        func run() async throws {
            try await withDatabase(options) { database in
                let (id, key) = try await RegistryAdmin.createAPIKey(name: name, role: role, database: database)
                FileHandle.standardError.write(Data("created API key \(id) '\(name)' (\(role)); store it now, it is not shown again:\n".utf8))
                print(key)
            }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List API keys (never the keys themselves).")
        @OptionGroup var options: ConfigurationOptions

        func run() async throws {
            try await withDatabase(options) { database in
                let lines = try await RegistryAdmin.listAPIKeys(database: database)
                print(lines.isEmpty ? "no API keys" : lines.joined(separator: "\n"))
            }
        }
    }

    struct Revoke: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Revoke an API key by id or name.")
        @Argument(help: "The key's id or name.") var key: String
        @OptionGroup var options: ConfigurationOptions

        func run() async throws {
            try await withDatabase(options) { database in
                let count = try await RegistryAdmin.revokeAPIKey(key, database: database)
                guard count > 0 else {
                    FileHandle.standardError.write(Data("streamhub: no API key with id or name '\(key)'\n".utf8))
                    throw ExitCode.failure
                }
                print("revoked \(count) key\(count == 1 ? "" : "s")")
            }
        }
    }
}

/// The password from standard input (`--password-stdin`), or asked for twice on the terminal without echo.
func readPassword(fromStdin: Bool) throws -> String {
    if fromStdin {
        guard let line = readLine(strippingNewline: true), !line.isEmpty else {
            FileHandle.standardError.write(Data("streamhub: --password-stdin read no password\n".utf8))
            throw ExitCode(2)
        }
        return line
    }
    guard isatty(STDIN_FILENO) == 1 else {
        FileHandle.standardError.write(Data("streamhub: no terminal to ask for the password on; use --password-stdin\n".utf8))
        throw ExitCode(2)
    }
    func prompt(_ text: String) -> String {
        FileHandle.standardError.write(Data(text.utf8))
        var saved = termios()
        tcgetattr(STDIN_FILENO, &saved)
        var silent = saved
        silent.c_lflag &= ~tcflag_t(ECHO)
        tcsetattr(STDIN_FILENO, TCSANOW, &silent)
        defer {
            tcsetattr(STDIN_FILENO, TCSANOW, &saved)
            FileHandle.standardError.write(Data("\n".utf8))
        }
        return readLine(strippingNewline: true) ?? ""
    }
    let first = prompt("Password: ")
    guard first == prompt("Again: ") else {
        FileHandle.standardError.write(Data("streamhub: the passwords differ\n".utf8))
        throw ExitCode(2)
    }
    return first
}
