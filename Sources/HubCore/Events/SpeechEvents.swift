/// A speech-to-text result, as the upstream STT service and `/events` clients know it.
public struct TranscriptionEvent: HubEvent, Equatable {
    public static let eventType = "transcription"
    public var text: String
    public var isFinal: Bool
    public var sessionID: String
    /// The community whose captions this text is, when it is one's (then only that community's audience
    /// and service keys receive it).
    public var communityID: Int64?

    public init(text: String, isFinal: Bool, sessionID: String, communityID: Int64? = nil) {
        self.text = text
        self.isFinal = isFinal
        self.sessionID = sessionID
        self.communityID = communityID
    }

    public var visibility: EventVisibility { .speech(community: communityID) }

    enum CodingKeys: String, CodingKey {
        case text
        case isFinal = "is_final"
        case sessionID = "session_id"
        case communityID = "community_id"
    }
}

/// A wake word heard by the upstream speech service.
public struct WakeWordEvent: HubEvent, Equatable {
    public static let eventType = "wake_word"
    public var word: String
    public var confidence: Double
    /// Seconds since the Unix epoch, as the upstream sends it.
    public var timestamp: Double

    public init(word: String, confidence: Double, timestamp: Double) {
        self.word = word
        self.confidence = confidence
        self.timestamp = timestamp
    }

    public var visibility: EventVisibility { .speech(community: nil) }
}
