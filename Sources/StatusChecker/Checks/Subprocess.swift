import Foundation
import Synchronization

/// Runs a program with a deadline and bounded output, without a shell.
enum Subprocess {
    struct Output: Sendable {
        let status: Int32
        let stdout: Data
        let stderr: Data
        let timedOut: Bool
    }

    enum Failure: Error, CustomStringConvertible {
        case notFound(String)
        case launch(String)

        var description: String {
            switch self {
            case .notFound(let name): return "\(name) is not installed (not found on PATH)"
            case .launch(let why): return "could not start: \(why)"
            }
        }
    }

    final class Flags: Sendable {
        let exited = Atomic(false)
        let timedOut = Atomic(false)
    }

    /// The full path of `name`, looked up on PATH unless it has a '/'.
    static func locate(_ name: String) -> String? {
        if name.contains("/") { return FileManager.default.isExecutableFile(atPath: name) ? name : nil }
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin"
        for directory in path.split(separator: ":") {
            let candidate = "\(directory)/\(name)"
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        return nil
    }

    /// Runs `program` with `arguments`; after `timeout` it gets SIGTERM, then SIGKILL 2 s later. Output past
    /// `maxOutput` bytes per stream is dropped.
    static func run(_ program: String, _ arguments: [String], timeout: Duration, maxOutput: Int = 16 << 20) async throws -> Output {
        guard let path = locate(program) else { throw Failure.notFound(program) }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: path)
        process.arguments = arguments
        process.standardInput = FileHandle.nullDevice
        let stdout = Pipe(), stderr = Pipe()
        process.standardOutput = stdout
        process.standardError = stderr
        let collected = Mutex((out: Data(), err: Data()))
        stdout.fileHandleForReading.readabilityHandler = { handle in
            let chunk = handle.availableData
            collected.withLock { if $0.out.count < maxOutput { $0.out.append(chunk.prefix(maxOutput - $0.out.count)) } }
        }
        stderr.fileHandleForReading.readabilityHandler = { handle in
            let chunk = handle.availableData
            collected.withLock { if $0.err.count < 64 << 10 { $0.err.append(chunk.prefix((64 << 10) - $0.err.count)) } }
        }
        let flags = Flags()
        let watchdog = Mutex<Task<Void, Never>?>(nil)
        let status: Int32 = try await withCheckedThrowingContinuation { continuation in
            process.terminationHandler = { process in
                flags.exited.store(true, ordering: .sequentiallyConsistent)
                continuation.resume(returning: process.terminationStatus)
            }
            do {
                try process.run()
            } catch {
                process.terminationHandler = nil
                continuation.resume(throwing: Failure.launch("\(error)"))
                return
            }
            let pid = process.processIdentifier
            let task = Task {
                do { try await Task.sleep(for: timeout) } catch { return }
                guard !flags.exited.load(ordering: .sequentiallyConsistent) else { return }
                flags.timedOut.store(true, ordering: .relaxed)
                kill(pid, SIGTERM)
                try? await Task.sleep(for: .seconds(2))
                if !flags.exited.load(ordering: .sequentiallyConsistent) { kill(pid, SIGKILL) }
            }
            watchdog.withLock { $0 = task }
        }
        watchdog.withLock { $0?.cancel() }
        // Drain what is left in the pipes.
        stdout.fileHandleForReading.readabilityHandler = nil
        stderr.fileHandleForReading.readabilityHandler = nil
        let restOut = (try? stdout.fileHandleForReading.readToEnd()) ?? nil
        let restErr = (try? stderr.fileHandleForReading.readToEnd()) ?? nil
        let output = collected.withLock { collected -> (Data, Data) in
            var out = collected.out, err = collected.err
            if let restOut, out.count < maxOutput { out.append(restOut.prefix(maxOutput - out.count)) }
            if let restErr, err.count < 64 << 10 { err.append(restErr.prefix((64 << 10) - err.count)) }
            return (out, err)
        }
        return Output(status: status, stdout: output.0, stderr: output.1, timedOut: flags.timedOut.load(ordering: .relaxed))
    }
}
