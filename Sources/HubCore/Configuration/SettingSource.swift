/// Looks a setting up in the flags first, then in the environment, remembering which one answered so
/// an error names exactly what the operator typed.
struct SettingSource {
    let flags: [String: String]
    let environment: [String: String]

    func origin(_ name: String) -> String {
        if flags[name] != nil { return "--\(name)" }
        return HubConfiguration.Setting("\(name)", default: "", help: "").environmentName
    }

    func invalid(_ name: String, _ message: String) -> ConfigurationError {
        ConfigurationError(setting: origin(name), message: message)
    }

    /// The raw value, or `nil` when neither flag nor variable is set. An empty variable counts as unset.
    func string(_ name: String) throws(ConfigurationError) -> String? {
        if let value = flags[name] { return value }
        let variable = HubConfiguration.Setting(name, default: "", help: "").environmentName
        if let value = environment[variable], !value.isEmpty { return value }
        return nil
    }

    func integer(_ name: String, in range: ClosedRange<Int>) throws(ConfigurationError) -> Int? {
        guard let raw = try string(name) else { return nil }
        guard let value = Int(raw.trimmingCharacters(in: .whitespaces)) else {
            throw invalid(name, "must be a whole number, got '\(raw.prefix(40))'")
        }
        guard range.contains(value) else {
            throw invalid(name, "must be between \(range.lowerBound) and \(range.upperBound), got \(value)")
        }
        return value
    }

    func boolean(_ name: String) throws(ConfigurationError) -> Bool? {
        guard let raw = try string(name) else { return nil }
        switch raw.lowercased() {
        case "true", "1", "yes", "on": return true
        case "false", "0", "no", "off": return false
        default: throw invalid(name, "must be true or false, got '\(raw.prefix(40))'")
        }
    }
}

import Foundation
