/// A speech-to-text result, as the upstream STT service and `/events` clients know it. StreamHub's own
/// transcribers add where the speech came from: the transcriber, the recording and the media time.
public struct TranscriptionEvent: HubEvent, Equatable {
    public static let eventType = "transcription"
    public var text: String
    public var isFinal: Bool
    public var sessionID: String
    /// The community whose captions this text is, when it is one's (then only that community's audience
    /// and service keys receive it).
    public var communityID: Int64?
    public var transcriberID: String?
    public var recordingID: String?
    /// Seconds since 1970 at which the utterance starts (and ends) in the recording's media.
    public var mediaTime: Double?
    public var mediaEnd: Double?

    public init(text: String, isFinal: Bool, sessionID: String, communityID: Int64? = nil, transcriberID: String? = nil,
                recordingID: String? = nil, mediaTime: Double? = nil, mediaEnd: Double? = nil) {
        self.text = text
        self.isFinal = isFinal
        self.sessionID = sessionID
        self.communityID = communityID
        self.transcriberID = transcriberID
        self.recordingID = recordingID
        self.mediaTime = mediaTime
        self.mediaEnd = mediaEnd
    }

    /// A transcriber's speech belongs to a recording, which every viewer may play and read the transcript of:
    /// viewers, service keys and the community's overlay keys. Other speech: ``EventVisibility/speech(community:)``.
    public var visibility: EventVisibility { EventVisibility.speech(community: communityID, recording: recordingID) }

    enum CodingKeys: String, CodingKey {
        case text
        case isFinal = "is_final"
        case sessionID = "session_id"
        case communityID = "community_id"
        case transcriberID = "transcriber_id"
        case recordingID = "recording_id"
        case mediaTime = "media_time"
        case mediaEnd = "media_end"
    }
}

/// A wake word heard in speech (by the upstream service, or a transcriber: then with its ids).
public struct WakeWordEvent: HubEvent, Equatable {
    public static let eventType = "wake_word"
    public var word: String
    public var confidence: Double
    /// Seconds since the Unix epoch: when the word was spoken (a transcriber's: in the recording's media).
    public var timestamp: Double
    public var sessionID: String?
    public var communityID: Int64?
    public var transcriberID: String?
    public var recordingID: String?

    public init(word: String, confidence: Double, timestamp: Double, sessionID: String? = nil, communityID: Int64? = nil,
                transcriberID: String? = nil, recordingID: String? = nil) {
        self.word = word
        self.confidence = confidence
        self.timestamp = timestamp
        self.sessionID = sessionID
        self.communityID = communityID
        self.transcriberID = transcriberID
        self.recordingID = recordingID
    }

    public var visibility: EventVisibility { EventVisibility.speech(community: communityID, recording: recordingID) }

    enum CodingKeys: String, CodingKey {
        case word, confidence, timestamp
        case sessionID = "session_id"
        case communityID = "community_id"
        case transcriberID = "transcriber_id"
        case recordingID = "recording_id"
    }
}

extension EventVisibility {
    /// Speech heard in a recording (`recording` set): whoever may read its transcript through REST (viewers),
    /// service keys, and the overlay keys of its community. Otherwise ``speech(community:)``.
    public static func speech(community: Int64?, recording: String?) -> EventVisibility {
        guard recording != nil else { return speech(community: community) }
        return EventVisibility(minimumRole: .viewer, community: community, service: true)
    }
}
