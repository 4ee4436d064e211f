import Foundation
import Subprocess
import Synchronization
import SystemPackage

/// Runs a program (yt-dlp, ffmpeg, ffprobe) with a deadline and bounded output, without a shell, on
/// swift-subprocess (posix_spawn, an async wait on the child, teardown on cancellation).
public enum ChildProcess {
    public struct Output: Sendable {
        public let status: Int32
        public let stdout: Data
        public let stderr: Data
        public let timedOut: Bool

        public init(status: Int32, stdout: Data, stderr: Data, timedOut: Bool) {
            self.status = status
            self.stdout = stdout
            self.stderr = stderr
            self.timedOut = timedOut
        }
    }

    public enum Failure: Error, CustomStringConvertible {
        case notFound(String)
        case launch(String)
        case outputTooLarge(Int)

        public var description: String {
            switch self {
            case .notFound(let name): return "\(name) is not installed (not found on PATH)"
            case .launch(let why): return "could not start: \(why)"
            case .outputTooLarge(let limit): return "it wrote more than \(limit) bytes"
            }
        }
    }

    /// The full path of `name`, looked up on PATH unless it has a '/'.
    public static func locate(_ name: String) -> String? {
        if name.contains("/") { return FileManager.default.isExecutableFile(atPath: name) ? name : nil }
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin"
        for directory in path.split(separator: ":") {
            let candidate = "\(directory)/\(name)"
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        return nil
    }

    /// Runs `program` with `arguments`; after `timeout` it gets SIGTERM, then SIGKILL 2 s later, and the
    /// answer says `timedOut`. More than `maxOutput` bytes on stdout (or 1 MiB on stderr) is a failure.
    public static func run(_ program: String, _ arguments: [String], timeout: Duration, maxOutput: Int = 16 << 20) async throws -> Output {
        guard let path = locate(program) else { throw Failure.notFound(program) }
        let options: PlatformOptions = {
            var options = PlatformOptions()
            options.teardownSequence = [.gracefulShutDown(allowedDurationToNextStep: .seconds(2))]
            return options
        }()
        let stderrLimit = 1 << 20
        let finished: Output? = try await withThrowingTaskGroup(of: Output?.self) { group in
            group.addTask {
                let result: ExecutionResult<Void, BytesOutput, BytesOutput>
                do {
                    result = try await Subprocess.run(.path(FilePath(path)), arguments: Arguments(arguments), platformOptions: options,
                                                      input: .none, output: .bytes(limit: maxOutput), error: .bytes(limit: stderrLimit))
                } catch let error as SubprocessError where error.code == .outputLimitExceeded {
                    throw Failure.outputTooLarge(maxOutput)
                } catch is CancellationError {
                    throw CancellationError()
                } catch let error as SubprocessError {
                    if Task.isCancelled { throw CancellationError() }
                    throw Failure.launch("\(error)")
                }
                let status: Int32
                switch result.terminationStatus {
                case .exited(let code): status = Int32(code)
                case .signaled(let signal): status = 128 + Int32(signal)
                }
                return Output(status: status, stdout: Data(result.standardOutput), stderr: Data(result.standardError), timedOut: false)
            }
            group.addTask {
                try await Task.sleep(for: timeout)
                return nil
            }
            defer { group.cancelAll() }
            return try await group.next() ?? nil
        }
        return finished ?? Output(status: -1, stdout: Data(), stderr: Data(), timedOut: true)
    }
}
