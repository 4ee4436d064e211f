import Testing
@testable import Discovery

@Suite struct IRCMessageTests {
    @Test func parsesTwitchPrivmsgWithTags() throws {
        let line = #"@badge-info=;color=#FF0000;display-name=Ada\sL;tmi-sent-ts=1700000000000 :ada!ada@ada.tmi.twitch.tv PRIVMSG #news :live now twitch.tv/foo"#
        let message = try #require(IRCMessage(line: line[...]))
        #expect(message.command == "PRIVMSG")
        #expect(message.tags["display-name"] == "Ada L")
        #expect(message.tags["badge-info"] == "")
        #expect(message.nick == "ada")
        #expect(message.parameters == ["#news", "live now twitch.tv/foo"])
    }

    @Test func parsesPingAndNumerics() throws {
        #expect(IRCMessage(line: "PING :tmi.twitch.tv")?.parameters == ["tmi.twitch.tv"])
        let welcome = try #require(IRCMessage(line: ":irc.example 001 justinfan1 :Welcome"))
        #expect(welcome.command == "001")
        #expect(welcome.prefix == "irc.example")
        #expect(welcome.parameters == ["justinfan1", "Welcome"])
    }

    @Test func rejectsEmptyAndOversizedLines() {
        #expect(IRCMessage(line: "") == nil)
        #expect(IRCMessage(line: "@a=b") == nil)
        #expect(IRCMessage(line: Substring(String(repeating: "x", count: IRCMessage.maxLineBytes + 1))) == nil)
    }
}
