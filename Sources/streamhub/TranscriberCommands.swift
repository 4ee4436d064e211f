import ArgumentParser
import Foundation
import HubCore
import Transcription

struct TranscriberCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "transcriber", abstract: "List, start and stop transcribers (speech to text from recordings).",
        subcommands: [List.self, Start.self, Stop.self])

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List transcribers: id, state, engine, recording, counters, error.")
        @OptionGroup var options: ConfigurationOptions

        func run() async throws {
            try await withDatabase(options) { database in print(try await TranscriberAdmin.list(database: database)) }
        }
    }

    struct Start: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Start a stopped transcriber (by id), or create one for a recording (--recording); the server picks it up within seconds.")
        @Argument(help: "A transcriber's id (to start it again).") var id: String?
        @Option(help: "Create a transcriber of this recording (from its live edge).") var recording: String?
        @Option(help: "The community whose overlays show the captions.") var community: Int64?
        @Option(name: .customLong("wake-word"), help: "A wake word or phrase to report (repeatable).") var wakeWords: [String] = []
        @Option(help: "The engine: pocketsphinx (built in) or a name from --stt-commands.") var engine = "pocketsphinx"
        @Option(help: "The language of the speech.") var language = "en-US"
        @OptionGroup var options: ConfigurationOptions

        func validate() throws {
            guard (id == nil) != (recording == nil) else { throw ValidationError("give a transcriber id or --recording, not both") }
        }

        func run() async throws {
            try await withDatabase(options) { database in
                if let id {
                    print(try await TranscriberAdmin.setState(id, running: true, database: database))
                } else if let recording {
                    print(try await TranscriberAdmin.create(recording: recording, community: community, wakeWords: wakeWords, engine: engine,
                                                            language: language, database: database))
                }
            }
        }
    }

    struct Stop: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Stop a transcriber.")
        @Argument(help: "The transcriber's id.") var id: String
        @OptionGroup var options: ConfigurationOptions

        func run() async throws {
            try await withDatabase(options) { database in print(try await TranscriberAdmin.setState(id, running: false, database: database)) }
        }
    }
}
