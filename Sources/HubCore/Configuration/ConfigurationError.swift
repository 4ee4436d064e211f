/// An invalid setting. Its description is the one line printed before the process exits with code 2.
public struct ConfigurationError: Error, CustomStringConvertible, Equatable {
    /// The flag or variable that was wrong, e.g. `STREAMHUB_PORT` or `--port`.
    public let setting: String
    public let message: String

    public init(setting: String, message: String) {
        self.setting = setting
        self.message = message
    }

    public var description: String { "invalid configuration: \(setting) \(message)" }
}
