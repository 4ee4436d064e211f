import ArgumentParser
import Foundation
import HubCore
import Overlays

struct OverlayCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "overlay", abstract: "Create, rotate and show communities' overlay keys.",
        subcommands: [Create.self, Rotate.self, Show.self])

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create a community (by name) with its first overlay key, and print the key (shown this once).")
        @Argument(help: "The community's name (or id, to give an existing community without a key its first key).") var community: String
        @OptionGroup var options: ConfigurationOptions

        func run() async throws {
            let grace = try options.resolve().overlayGracePeriod
            try await withDatabase(options) { database in
                print(try await OverlayAdmin.createCLI(community, database: database, gracePeriod: grace))
            }
        }
    }

    struct Rotate: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Rotate a community's overlay key; the old key stays valid for the grace period. Prints the new key.")
        @Argument(help: "The community's name or id.") var community: String
        @OptionGroup var options: ConfigurationOptions

        func run() async throws {
            let grace = try options.resolve().overlayGracePeriod
            try await withDatabase(options) { database in
                print(try await OverlayAdmin.rotateCLI(community, database: database, gracePeriod: grace))
            }
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show a community's key status (prefixes only, never the whole key).")
        @Argument(help: "The community's name or id.") var community: String
        @OptionGroup var options: ConfigurationOptions

        func run() async throws {
            let grace = try options.resolve().overlayGracePeriod
            try await withDatabase(options) { database in
                print(try await OverlayAdmin.showCLI(community, database: database, gracePeriod: grace))
            }
        }
    }
}
