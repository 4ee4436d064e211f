import ArgumentParser
import Foundation
import HubCore
import StreamManager

struct ProgramCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "program", abstract: "List, start and stop the Stream Manager's programs.",
        subcommands: [List.self, Start.self, Stop.self])

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List programs: name, state, size@fps, layers.")
        @OptionGroup var options: ConfigurationOptions

        func run() async throws {
            try await withDatabase(options) { database in print(try await ProgramAdmin.list(database: database)) }
        }
    }

    struct Start: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Start rendering a program (the server picks it up within seconds).")
        @Argument(help: "The program's name.") var name: String
        @OptionGroup var options: ConfigurationOptions

        func run() async throws {
            try await withDatabase(options) { database in print(try await ProgramAdmin.setState(name, running: true, database: database)) }
        }
    }

    struct Stop: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Stop rendering a program.")
        @Argument(help: "The program's name.") var name: String
        @OptionGroup var options: ConfigurationOptions

        func run() async throws {
            try await withDatabase(options) { database in print(try await ProgramAdmin.setState(name, running: false, database: database)) }
        }
    }
}
