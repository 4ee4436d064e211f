import Foundation

/// A place a stream is in: a city (when known) and a US state as its two-letter code (or a region name
/// from the configured place list).
public struct Location: Sendable, Equatable {
    public var city: String?
    public var state: String?

    public init(city: String?, state: String?) {
        self.city = city
        self.state = state
    }
}

/// Reads a location from the text around a stream link the way people write it in chat: "Minneapolis, MN",
/// "minneapolis mn", "in los angeles, california", "downtown Portland OR", "Portland, Oregon", a known city
/// alone ("live from Denver"), a short name ("LA", "Philly", from the built-in list or the configured
/// places), or a US state alone ("live from Texas").
///
/// Rules, in order (the first that matches wins):
/// 1. a known city (built in, see `USPlaces`, or configured), in any case, then a state — its name in any
///    case, or its code (in any case only when it is one of that city's states: "portland or");
/// 2. capitalised words, a comma, and a state name or a capitalised code ("Kenosha, WI");
/// 3. a configured place or short name as whole words (all-capital short names only in capitals: "LA");
/// 4. a known city alone, capitalised — or, for cities whose names are everyday words ("Mobile",
///    "Charlotte"), only right after "in", "from", "at", "near", "outside";
/// 5. a state name alone, capitalised or right after one of those words ("live from texas").
/// Two-letter codes count only after a city, since "in", "or", "me" and "ok" are also words.
public struct LocationParser: Sendable {
    /// Configured places, matched as whole words, case-insensitively.
    public let places: [Location]
    private let placeKeys: [(words: [String], caseSensitive: Bool, location: Location)]
    private let cityKeys: [(words: [String], city: String, states: [String], ambiguous: Bool)]

    public init(places: [Location] = []) {
        self.places = places
        var placeKeys: [(words: [String], caseSensitive: Bool, location: Location)] = places.compactMap { place in
            guard let city = place.city else { return nil }
            let words = Self.words(city).map { $0.lowercased() }
            return words.isEmpty ? nil : (words, false, place)
        }
        for short in USPlaces.shortNames {
            let caseSensitive = short.name == short.name.uppercased()
            let words = Self.words(short.name).map { caseSensitive ? $0 : $0.lowercased() }
            placeKeys.append((words, caseSensitive, Location(city: short.city, state: short.state)))
        }
        self.placeKeys = placeKeys.sorted { $0.words.count > $1.words.count }
        var seen = Set<String>()
        var cityKeys: [(words: [String], city: String, states: [String], ambiguous: Bool)] = []
        let known = places.compactMap { place in place.city.map { ($0, place.state.map { [$0] } ?? []) } } + USPlaces.cities
        for (city, states) in known {
            let words = Self.words(city).map(Self.key)
            guard !words.isEmpty, seen.insert(words.joined(separator: " ")).inserted else { continue }
            cityKeys.append((words, city, states, USPlaces.ambiguous.contains(words.joined(separator: " "))))
        }
        self.cityKeys = cityKeys.sorted { $0.words.count > $1.words.count }
    }

    /// Parses "City, ST; Other City, State" (the `--discovery-places` setting).
    public static func parsePlaces(_ text: String) -> [Location] {
        text.split(separator: ";").compactMap { entry in
            let parts = entry.split(separator: ",", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            guard let city = parts.first, !city.isEmpty, city.count <= 100 else { return nil }
            let state = parts.count > 1 && !parts[1].isEmpty ? (Self.stateCode(parts[1]) ?? parts[1]) : nil
            return Location(city: city, state: state)
        }
    }

    public func location(in text: String) -> Location? {
        let tokens = Self.tokens(String(text.prefix(4000)))
        if let found = knownCityAndState(tokens) { return found }
        if let found = cityAndState(tokens) { return found }
        if let found = configuredPlace(tokens) { return found }
        if let found = knownCityAlone(tokens) { return found }
        return stateAlone(tokens)
    }

    // MARK: Tokens

    /// Words and commas of the text, with URLs left out.
    struct Token: Equatable {
        var text: String
        var isComma: Bool { text == "," }
        /// Capitalised, or a particle before a capital ("d'Alene", "O'Fallon").
        var isCapitalized: Bool {
            if text.first?.isUppercase == true { return true }
            return text.hasPrefix("d'") && text.dropFirst(2).first?.isUppercase == true
        }
    }

    static func tokens(_ text: String) -> [Token] {
        var result: [Token] = []
        for piece in text.split(whereSeparator: { $0.isWhitespace }) {
            let lower = piece.lowercased()
            if lower.contains("://") || lower.contains("www.") || lower.contains(".com") || lower.contains(".tv") || lower.contains("/") { 
                result.append(Token(text: "|"))  // a link separates phrases
                continue
            }
            var word = ""
            for character in piece {
                if character.isLetter || character == "'" || character == "-" || character == "." && !word.isEmpty && word.count <= 3 {
                    word.append(character)
                } else {
                    if !word.isEmpty { result.append(Token(text: word)); word = "" }
                    if character == "," { result.append(Token(text: ",")) } else { result.append(Token(text: "|")) }
                }
            }
            if !word.isEmpty {
                while word.hasSuffix(".") && !(word.count <= 3 && word.first?.isUppercase == true) { word.removeLast() }
                result.append(Token(text: word))
            }
        }
        return result
    }

    static func words(_ text: String) -> [String] {
        tokens(text).filter { !$0.isComma && $0.text != "|" }.map(\.text)
    }

    // MARK: Rules

    /// "City, ST" or "City, State Name".
    func cityAndState(_ tokens: [Token]) -> Location? {
        for index in tokens.indices where tokens[index].isComma {
            guard index > 0, index + 1 < tokens.count else { continue }
            let (state, _) = Self.state(at: index + 1, in: tokens, allowCode: true)
            guard let state else { continue }
            // The city: up to three capitalised words (with "of", "de", "la"... between them) before the comma.
            var start = index
            var taken = 0
            while start > 0, taken < 4 {
                let word = tokens[start - 1]
                if word.isComma || word.text == "|" { break }
                if word.isCapitalized { start -= 1; taken += 1; continue }
                if Self.cityJoiners.contains(word.text), start - 1 > 0, tokens[start - 2].isCapitalized { start -= 1; continue }
                break
            }
            while start < index, !tokens[start].isCapitalized { start += 1 }
            guard start < index else { continue }
            var cityWords = tokens[start..<index].map(\.text)
            while let first = cityWords.first, Self.leadingNonCity.contains(first.lowercased()), cityWords.count > 1 { cityWords.removeFirst() }
            guard let firstWord = cityWords.first, !Self.leadingNonCity.contains(firstWord.lowercased()) else { continue }
            return Location(city: cityWords.joined(separator: " "), state: state)
        }
        return nil
    }

    /// Words right before a place that make a lowercase or everyday-word place count.
    static let locatives: Set<String> = ["in", "from", "at", "near", "outside", "across", "downtown", "around"]

    /// Where a known city's words start, as (token index, key), longest names first.
    /// A word as city names are compared: lowercased, without dots ("St." and "st" are the same).
    static func key(_ word: String) -> String { word.lowercased().replacingOccurrences(of: ".", with: "") }

    func knownCities(_ tokens: [Token]) -> [(index: Int, key: (words: [String], city: String, states: [String], ambiguous: Bool))] {
        let words = tokens.map { Self.key($0.text) }
        var found: [(Int, (words: [String], city: String, states: [String], ambiguous: Bool))] = []
        var covered = Set<Int>()
        for key in cityKeys where key.words.count <= words.count {
            for start in 0...(words.count - key.words.count) where !covered.contains(start) && Array(words[start..<(start + key.words.count)]) == key.words {
                found.append((start, key))
                for offset in 0..<key.words.count { covered.insert(start + offset) }
            }
        }
        return found.sorted { $0.0 < $1.0 }
    }

    /// Rule 1: a known city in any case, an optional comma, and a state.
    func knownCityAndState(_ tokens: [Token]) -> Location? {
        for (index, key) in knownCities(tokens) {
            var next = index + key.words.count
            if next < tokens.count, tokens[next].isComma { next += 1 }
            guard next < tokens.count else { continue }
            let (name, _) = Self.state(at: next, in: tokens, allowCode: true, anyCase: true)
            if let name { return Location(city: key.city, state: name) }
            let word = tokens[next].text.replacingOccurrences(of: ".", with: "")
            if word.count == 2, key.states.contains(word.uppercased()) { return Location(city: key.city, state: word.uppercased()) }
        }
        return nil
    }

    /// Rule 3: a configured place or a short name.
    func configuredPlace(_ tokens: [Token]) -> Location? {
        let lowered = tokens.map { $0.text.lowercased() }
        let exact = tokens.map(\.text)
        for (key, caseSensitive, location) in placeKeys {
            let words = caseSensitive ? exact : lowered
            guard key.count <= words.count else { continue }
            for start in 0...(words.count - key.count) where Array(words[start..<(start + key.count)]) == key {
                return location
            }
        }
        return nil
    }

    /// Rule 4: a known city without its state (the city's best-known state).
    func knownCityAlone(_ tokens: [Token]) -> Location? {
        for (index, key) in knownCities(tokens) {
            let capitalised = tokens[index..<(index + key.words.count)].allSatisfy { $0.isCapitalized || Self.cityJoiners.contains($0.text) }
            let afterLocative = index > 0 && Self.locatives.contains(tokens[index - 1].text.lowercased())
            guard key.ambiguous ? capitalised && afterLocative : capitalised || afterLocative else { continue }
            return Location(city: key.city, state: key.states.first)
        }
        return nil
    }

    /// Rule 5: a state name alone.
    func stateAlone(_ tokens: [Token]) -> Location? {
        for index in tokens.indices {
            let afterLocative = index > 0 && Self.locatives.contains(tokens[index - 1].text.lowercased())
            let (state, length) = Self.state(at: index, in: tokens, allowCode: false, anyCase: afterLocative)
            guard let state else { continue }
            if !afterLocative, length == 1, USPlaces.personLikeStates.contains(tokens[index].text.lowercased()) { continue }
            return Location(city: nil, state: state)
        }
        return nil
    }

    /// A state name (one to three words) or, with `allowCode`, a capitalised two-letter code at `index`.
    static func state(at index: Int, in tokens: [Token], allowCode: Bool, anyCase: Bool = false) -> (String?, Int) {
        for length in stride(from: 3, through: 1, by: -1) where index + length <= tokens.count {
            let phrase = tokens[index..<(index + length)]
            guard phrase.allSatisfy({ !$0.isComma && $0.text != "|" }) else { continue }
            let name = phrase.map { $0.text.lowercased() }.joined(separator: " ")
            // A state name must be capitalised when it stands alone, so "washington" in a sentence is not read.
            if let code = stateNames[name], allowCode || anyCase || phrase.first?.isCapitalized == true {
                // "Washington" alone is too often the city or a person; require "Washington State" or a city.
                if !allowCode && name == "washington" { continue }
                return (code, length)
            }
        }
        if allowCode, index < tokens.count {
            let word = tokens[index].text.replacingOccurrences(of: ".", with: "")
            if word.count == 2, word == word.uppercased(), stateCodes.contains(word) { return (word, 1) }
        }
        return (nil, 0)
    }

    /// The two-letter code for a state name or code.
    public static func stateCode(_ text: String) -> String? {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        if trimmed.count == 2, stateCodes.contains(trimmed.uppercased()) { return trimmed.uppercased() }
        return stateNames[trimmed.lowercased()]
    }

    static let cityJoiners: Set<String> = ["of", "de", "del", "la", "las", "los", "el", "upon", "on", "du", "des"]
    /// Capitalised words that start sentences rather than city names.
    static let leadingNonCity: Set<String> = [
        "live", "streaming", "stream", "now", "in", "at", "from", "the", "protest", "march", "rally", "here", "watch",
        "downtown", "breaking", "happening", "update", "currently", "near", "outside", "via", "on", "and", "new:",
    ]

    static let stateNames: [String: String] = [
        "alabama": "AL", "alaska": "AK", "arizona": "AZ", "arkansas": "AR", "california": "CA", "colorado": "CO",
        "connecticut": "CT", "delaware": "DE", "florida": "FL", "georgia": "GA", "hawaii": "HI", "idaho": "ID",
        "illinois": "IL", "indiana": "IN", "iowa": "IA", "kansas": "KS", "kentucky": "KY", "louisiana": "LA",
        "maine": "ME", "maryland": "MD", "massachusetts": "MA", "michigan": "MI", "minnesota": "MN",
        "mississippi": "MS", "missouri": "MO", "montana": "MT", "nebraska": "NE", "nevada": "NV",
        "new hampshire": "NH", "new jersey": "NJ", "new mexico": "NM", "new york": "NY", "north carolina": "NC",
        "north dakota": "ND", "ohio": "OH", "oklahoma": "OK", "oregon": "OR", "pennsylvania": "PA",
        "rhode island": "RI", "south carolina": "SC", "south dakota": "SD", "tennessee": "TN", "texas": "TX",
        "utah": "UT", "vermont": "VT", "virginia": "VA", "washington": "WA", "washington state": "WA",
        "west virginia": "WV", "wisconsin": "WI", "wyoming": "WY", "district of columbia": "DC", "puerto rico": "PR",
    ]
    static let stateCodes: Set<String> = Set(stateNames.values)
}
