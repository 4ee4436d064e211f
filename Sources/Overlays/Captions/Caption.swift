import Foundation
import HubCore

/// One caption, as stored and as sent to overlays.
public struct Caption: Sendable, Equatable {
    public var communityID: Int64
    public var text: String
    public var isFinal: Bool
    public var username: String?
    public var original: String?
    public var translated: String?
    public var detectedLang: String?
    public var targetLang: String?
    public var confidence: Double?
    public var platform: String?
    /// Seconds since 1970.
    public var timestamp: Double

    public init(communityID: Int64, text: String, isFinal: Bool = true, username: String? = nil, original: String? = nil,
                translated: String? = nil, detectedLang: String? = nil, targetLang: String? = nil, confidence: Double? = nil,
                platform: String? = nil, timestamp: Double) {
        self.communityID = communityID
        self.text = text
        self.isFinal = isFinal
        self.username = username
        self.original = original
        self.translated = translated
        self.detectedLang = detectedLang
        self.targetLang = targetLang
        self.confidence = confidence
        self.platform = platform
        self.timestamp = timestamp
    }

    /// The frame overlay pages read: `{"type":"caption","text",…}` (`text` is the caption text unchanged).
    public var frameJSON: String {
        func string(_ value: String?) -> JSONText.Value { value.map(JSONText.Value.string) ?? .null }
        return JSONText.object([
            ("type", .string("caption")), ("text", .string(text)), ("is_final", .bool(isFinal)), ("username", string(username)),
            ("original", string(original ?? text)), ("translated", string(translated)), ("detected_lang", string(detectedLang)),
            ("target_lang", string(targetLang)), ("confidence", confidence.map(JSONText.Value.double) ?? .null),
            ("timestamp", .string(Timestamp.iso8601(timestamp))), ("community_id", .int(Int(communityID))),
        ])
    }

    /// The bus payload of a `caption` event: the frame's fields plus the community.
    var busPayload: String { frameJSON }

    /// Reads a `caption` event payload back.
    static func fromBus(_ text: String) -> Caption? {
        guard let object = try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any],
              let community = (object["community_id"] as? NSNumber)?.int64Value, let body = object["text"] as? String
        else { return nil }
        return Caption(
            communityID: community, text: body, isFinal: object["is_final"] as? Bool ?? true, username: object["username"] as? String,
            original: object["original"] as? String, translated: object["translated"] as? String,
            detectedLang: object["detected_lang"] as? String, targetLang: object["target_lang"] as? String,
            confidence: (object["confidence"] as? NSNumber)?.doubleValue, platform: object["platform"] as? String,
            timestamp: (object["timestamp"] as? String).flatMap(Timestamp.parse) ?? Date().timeIntervalSince1970)
    }
}

/// The bodies `POST /api/v1/internal/captions` accepts: StreamHub's own
/// `{"community_id","text","speaker"?,"language"?,"is_final"?}` and the chat-translation router's
/// `{"community_id","platform","username","original_message","translated_message","detected_language",
/// "target_language","confidence"}`.
struct IncomingCaption: Decodable {
    let communityID: Int64
    let text: String?
    let speaker: String?
    let language: String?
    let isFinal: Bool?
    let platform: String?
    let username: String?
    let originalMessage: String?
    let translatedMessage: String?
    let detectedLanguage: String?
    let targetLanguage: String?
    let confidence: Double?

    enum CodingKeys: String, CodingKey {
        case communityID = "community_id", text, speaker, language, isFinal = "is_final", platform, username
        case originalMessage = "original_message", translatedMessage = "translated_message"
        case detectedLanguage = "detected_language", targetLanguage = "target_language", confidence
    }

    init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        // community_id as a number or a numeric string (both are in the wild).
        if let number = try? container.decode(Int64.self, forKey: .communityID) {
            communityID = number
        } else if let text = try? container.decode(String.self, forKey: .communityID), let number = Int64(text) {
            communityID = number
        } else {
            throw DecodingError.typeMismatch(Int64.self, .init(codingPath: [CodingKeys.communityID], debugDescription: "community_id must be an integer"))
        }
        text = try container.decodeIfPresent(String.self, forKey: .text)
        speaker = try container.decodeIfPresent(String.self, forKey: .speaker)
        language = try container.decodeIfPresent(String.self, forKey: .language)
        isFinal = try container.decodeIfPresent(Bool.self, forKey: .isFinal)
        platform = try container.decodeIfPresent(String.self, forKey: .platform)
        username = try container.decodeIfPresent(String.self, forKey: .username)
        originalMessage = try container.decodeIfPresent(String.self, forKey: .originalMessage)
        translatedMessage = try container.decodeIfPresent(String.self, forKey: .translatedMessage)
        detectedLanguage = try container.decodeIfPresent(String.self, forKey: .detectedLanguage)
        targetLanguage = try container.decodeIfPresent(String.self, forKey: .targetLanguage)
        confidence = try container.decodeIfPresent(Double.self, forKey: .confidence)
    }

    static let maxText = 2000

    /// A BCP 47-ish language tag: letters, digits and '-', 2–35 characters, starting with 2–8 letters.
    static func isLanguageTag(_ tag: String) -> Bool {
        let parts = tag.split(separator: "-", omittingEmptySubsequences: false)
        guard tag.count <= 35, let first = parts.first, (2...8).contains(first.count), first.allSatisfy({ $0.isASCII && $0.isLetter }) else { return false }
        return parts.dropFirst().allSatisfy { (1...8).contains($0.count) && $0.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber) } }
    }

    /// The validated caption (the community is checked by the caller).
    func caption(at now: Double) throws -> Caption {
        let body = (translatedMessage?.isEmpty == false ? translatedMessage : nil) ?? text ?? originalMessage
        guard let body, !body.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty else {
            throw HubError.validation("text is required (or original_message / translated_message)")
        }
        guard body.count <= Self.maxText else { throw HubError.validation("text must be at most \(Self.maxText) characters") }
        for (name, tag) in [("language", language), ("detected_language", detectedLanguage), ("target_language", targetLanguage)] {
            if let tag, !tag.isEmpty, !Self.isLanguageTag(tag) { throw HubError.validation("\(name) must be a language tag such as en or pt-BR") }
        }
        if let confidence, !(0...1).contains(confidence) { throw HubError.validation("confidence must be between 0 and 1") }
        for (name, value) in [("speaker", speaker), ("username", username), ("platform", platform)] {
            if let value, value.count > 200 { throw HubError.validation("\(name) must be at most 200 characters") }
        }
        for (name, value) in [("original_message", originalMessage), ("translated_message", translatedMessage)] {
            if let value, value.count > Self.maxText { throw HubError.validation("\(name) must be at most \(Self.maxText) characters") }
        }
        return Caption(
            communityID: communityID, text: body, isFinal: isFinal ?? true, username: username ?? speaker,
            original: originalMessage ?? text, translated: translatedMessage, detectedLang: detectedLanguage ?? language,
            targetLang: targetLanguage, confidence: confidence, platform: platform, timestamp: now)
    }
}
