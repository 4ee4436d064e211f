import HubCore
import Logging
import Testing

@Suite struct ConfigurationTests {
    @Test func defaultsJustWork() throws {
        let configuration = try HubConfiguration.resolve(flags: [:], environment: [:])
        #expect(configuration.host == "127.0.0.1")
        #expect(configuration.port == 8027)
        #expect(configuration.grpcPort == 50050)
        #expect(configuration.dataDirectory == "./data")
        #expect(configuration.database == .sqlite(path: "./data/streamhub.sqlite"))
        #expect(configuration.serviceKeys.isEmpty)
        #expect(configuration.allowPrivateSources == false)
        #expect(configuration.logLevel == .info)
        #expect(configuration.logFormat == .text)
        #expect(configuration.webSocketMaxFrameSize == 65536)
        #expect(configuration.shutdownTimeout == .seconds(10))
        #expect(!configuration.instanceID.isEmpty)
    }

    @Test func environmentVariablesAreRead() throws {
        let configuration = try HubConfiguration.resolve(flags: [:], environment: [
            "STREAMHUB_HOST": "0.0.0.0", "STREAMHUB_PORT": "9000", "STREAMHUB_DATA_DIR": "/tmp/x",
            "STREAMHUB_SERVICE_KEYS": "aaaaaaaaaaaaaaaa, bbbbbbbbbbbbbbbb", "STREAMHUB_ALLOW_PRIVATE_SOURCES": "true",
            "STREAMHUB_LOG_LEVEL": "debug", "STREAMHUB_LOG_FORMAT": "json", "STREAMHUB_INSTANCE_ID": "node-1",
        ])
        #expect(configuration.host == "0.0.0.0")
        #expect(configuration.port == 9000)
        #expect(configuration.database == .sqlite(path: "/tmp/x/streamhub.sqlite"))
        #expect(configuration.serviceKeys == ["aaaaaaaaaaaaaaaa", "bbbbbbbbbbbbbbbb"])
        #expect(configuration.allowPrivateSources)
        #expect(configuration.logLevel == .debug)
        #expect(configuration.logFormat == .json)
        #expect(configuration.instanceID == "node-1")
    }

    @Test func scaleOutSettings() throws {
        let configuration = try HubConfiguration.resolve(flags: ["advertise-url": "http://10.0.0.5:8027/", "job-lease": "20"], environment: [:])
        #expect(configuration.advertiseURL == "http://10.0.0.5:8027" && configuration.jobLease == 20)
        let defaults = try HubConfiguration.resolve(flags: [:], environment: [:])
        #expect(defaults.advertiseURL == nil && defaults.jobLease == 15)
    }

    @Test func speechToTextSettings() throws {
        let configuration = try HubConfiguration.resolve(flags: [:], environment: [
            "STREAMHUB_STT_COMMANDS": " whisper=/usr/local/bin/whisper-stream --model base ; vosk_en=vosk-json ;",
            "STREAMHUB_STT_MAX_TRANSCRIBERS": "8", "STREAMHUB_STT_PYTHON": "/opt/py/bin/python3",
        ])
        #expect(configuration.transcription.commands == ["whisper": ["/usr/local/bin/whisper-stream", "--model", "base"], "vosk_en": ["vosk-json"]])
        #expect(configuration.transcription.maxTranscribers == 8 && configuration.transcription.pythonPath == "/opt/py/bin/python3")
        #expect(try HubConfiguration.resolve(flags: [:], environment: [:]).transcription == HubConfiguration.TranscriptionSettings())
        for bad in ["noequals", "=prog", "pocketsphinx=x", "bad name=x", "empty="] {
            #expect(throws: ConfigurationError.self, "\(bad)") {
                _ = try HubConfiguration.resolve(flags: [:], environment: ["STREAMHUB_STT_COMMANDS": bad])
            }
        }
    }

    @Test func flagWinsOverEnvironment() throws {
        let configuration = try HubConfiguration.resolve(flags: ["port": "7000"], environment: ["STREAMHUB_PORT": "9000"])
        #expect(configuration.port == 7000)
    }

    @Test func postgresURLSelectsPostgres() throws {
        let url = "postgres://hub:secret@db.example:5432/streamhub"
        let configuration = try HubConfiguration.resolve(flags: [:], environment: ["STREAMHUB_DATABASE_URL": url])
        #expect(configuration.database == .postgres(url: url))
        #expect(!configuration.database.redacted.contains("secret"))
    }

    @Test(arguments: [
        (["STREAMHUB_PORT": "abc"], [String: String](), "STREAMHUB_PORT"),
        (["STREAMHUB_PORT": "70000"], [:], "STREAMHUB_PORT"),
        ([:], ["port": "-1"], "--port"),
        (["STREAMHUB_ALLOW_PRIVATE_SOURCES": "maybe"], [:], "STREAMHUB_ALLOW_PRIVATE_SOURCES"),
        (["STREAMHUB_LOG_LEVEL": "loud"], [:], "STREAMHUB_LOG_LEVEL"),
        (["STREAMHUB_LOG_FORMAT": "xml"], [:], "STREAMHUB_LOG_FORMAT"),
        (["STREAMHUB_DATABASE_URL": "mysql://x/y"], [:], "STREAMHUB_DATABASE_URL"),
        (["STREAMHUB_DATABASE_URL": "postgres://"], [:], "STREAMHUB_DATABASE_URL"),
        (["STREAMHUB_SERVICE_KEYS": "short"], [:], "STREAMHUB_SERVICE_KEYS"),
        (["STREAMHUB_JWT_SECRET": "too-short"], [:], "STREAMHUB_JWT_SECRET"),
        (["STREAMHUB_INSTANCE_ID": "has space"], [:], "STREAMHUB_INSTANCE_ID"),
        (["STREAMHUB_WS_MAX_FRAME_SIZE": "10"], [:], "STREAMHUB_WS_MAX_FRAME_SIZE"),
        (["STREAMHUB_ADVERTISE_URL": "ftp://node-1:8027"], [:], "STREAMHUB_ADVERTISE_URL"),
        (["STREAMHUB_ADVERTISE_URL": "http://node-1:8027/api?x=1"], [:], "STREAMHUB_ADVERTISE_URL"),
        (["STREAMHUB_JOB_LEASE": "1"], [:], "STREAMHUB_JOB_LEASE"),
        ([:], ["bogus": "1"], "--bogus"),
    ])
    func invalidSettingIsNamed(environment: [String: String], flags: [String: String], setting: String) {
        #expect {
            _ = try HubConfiguration.resolve(flags: flags, environment: environment)
        } throws: { error in
            guard let error = error as? ConfigurationError else { return false }
            return error.setting == setting && error.description.hasPrefix("invalid configuration: \(setting) ")
        }
    }

    @Test func everySettingHasAnEnvironmentName() {
        let names = HubConfiguration.settings.map(\.environmentName)
        #expect(names.contains("STREAMHUB_DATA_DIR"))
        #expect(names.contains("STREAMHUB_ALLOW_PRIVATE_SOURCES"))
        #expect(Set(names).count == names.count)
    }
}
