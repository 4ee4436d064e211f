import Foundation
import HubCore
import HubStore
import HubTestSupport
import Logging
import Metrics
import NIOCore
@testable import Overlays
import Realtime
import Synchronization
import Testing

@Suite struct OverlayKeysTests {
    func withKeys(_ backend: TestDatabases.Backend, _ body: (OverlayKeys, ManualWallClock, HubDatabase) async throws -> Void) async throws {
        try await TestDatabases.withMigrated(backend, CoreMigrations.all + OverlayMigrations.all) { database, _ in
            let clock = ManualWallClock()
            try await body(OverlayKeys(database: database, clock: clock, gracePeriod: 300), clock, database)
        }
    }

    @Test(arguments: TestDatabases.available)
    func rotationTimeline(backend: TestDatabases.Backend) async throws {
        try await withKeys(backend) { keys, clock, database in
            let (community, first) = try await OverlayAdmin.create(name: "north", database: database, keys: keys, communities: nil)
            #expect(first.count == 64 && first.allSatisfy(\.isHexDigit))
            #expect(try await keys.validate(first).map { [$0.communityID, $0.inGracePeriod ? 1 : 0] } == [community, false ? 1 : 0])
            #expect(try await keys.validate(first.uppercased()) != nil, "hex is case-insensitive")

            clock.advance(by: 1000)
            let second = try await keys.rotate(community)
            #expect(second != first)
            #expect(try await keys.validate(second).map { [$0.communityID, $0.inGracePeriod ? 1 : 0] } == [community, false ? 1 : 0])
            clock.advance(by: 299)
            #expect(try await keys.validate(first).map { [$0.communityID, $0.inGracePeriod ? 1 : 0] } == [community, true ? 1 : 0], "previous key inside the grace period")
            clock.advance(by: 1)
            #expect(try await keys.validate(first) == nil, "previous key after the grace period")
            #expect(try await keys.validate(second) != nil)

            // Rotated twice in a row: the first key is dead at once, even inside the grace period.
            let third = try await keys.rotate(community)
            #expect(try await keys.validate(second).map { [$0.communityID, $0.inGracePeriod ? 1 : 0] } == [community, true ? 1 : 0])
            _ = try await keys.rotate(community)
            #expect(try await keys.validate(third) != nil)
            #expect(try await keys.validate(second) == nil)
            #expect(try await keys.validate(first) == nil)
        }
    }

    /// Two instances (or two runs) finding a key due at once rotate it once: the key OBS sources use now
    /// stays valid through the grace period instead of being retired by a second rotation.
    @Test(arguments: TestDatabases.available)
    func aDueKeyIsRotatedOnceEvenWhenTwoRotateAtOnce(backend: TestDatabases.Backend) async throws {
        try await withKeys(backend) { keys, clock, database in
            let (community, first) = try await OverlayAdmin.create(name: "south", database: database, keys: keys, communities: nil)
            try await keys.schedule(community, every: 3600)
            #expect(try await keys.scheduledRotation(community) == nil, "not due yet")
            clock.advance(by: 3601)
            #expect(try await keys.due() == [community])
            let results = try await withThrowingTaskGroup(of: Bool.self) { group in
                for _ in 0..<4 { group.addTask { try await keys.scheduledRotation(community) != nil } }
                return try await group.reduce(into: [Bool]()) { $0.append($1) }
            }
            #expect(results.filter { $0 }.count == 1, "exactly one rotation: \(results)")
            #expect(try await keys.validate(first).map(\.inGracePeriod) == true, "the key in use keeps its grace period")
            #expect(try await keys.due().isEmpty)
            let status = try #require(try await keys.status(community))
            #expect(status.nextRotationAt == clock.now().timeIntervalSince1970 + 3600)
        }
    }

    /// A storm of overlay connects with one key (every OBS source reconnecting after a restart) is one
    /// database lookup, and so is a storm of one wrong key; answers are kept only for the cache's time.
    @Test(arguments: TestDatabases.available)
    func connectsWithOneKeyShareOneLookup(backend: TestDatabases.Backend) async throws {
        try await withKeys(backend) { keys, clock, database in
            let (community, key) = try await OverlayAdmin.create(name: "storm", database: database, keys: keys, communities: nil)
            let wrong = String(repeating: "ab", count: 32)
            let answers = try await withThrowingTaskGroup(of: Int64?.self) { group in
                for index in 0..<200 { group.addTask { try await keys.validate(index % 2 == 0 ? key : wrong)?.communityID } }
                return try await group.reduce(into: [Int64?]()) { $0.append($1) }
            }
            #expect(answers.filter { $0 == community }.count == 100)
            #expect(answers.filter { $0 == nil }.count == 100)
            #expect(keys.cache.lookups == 2, "one lookup for the key, one for the wrong key")
            clock.advance(by: keys.cache.ttl - 0.5)
            #expect(try await keys.validate(key)?.communityID == community)
            #expect(keys.cache.lookups == 2)
            clock.advance(by: 0.5)
            #expect(try await keys.validate(key)?.communityID == community)
            #expect(keys.cache.lookups == 3, "an answer is not kept past the cache's time")
        }
    }

    /// Another instance rotates (two instances, one database): the keys it retired stop opening overlays here
    /// as soon as its rotation event arrives, not when this instance's kept answers run out.
    @Test(arguments: TestDatabases.available)
    func aRotationOnAnotherInstanceIsHonouredWhenItsEventArrives(backend: TestDatabases.Backend) async throws {
        try await withKeys(backend) { here, clock, database in
            let elsewhere = OverlayKeys(database: database, clock: clock, gracePeriod: 300)
            let (community, first) = try await OverlayAdmin.create(name: "east", database: database, keys: elsewhere, communities: nil)
            #expect(try await here.validate(first)?.communityID == community)
            _ = try await elsewhere.rotation(community)
            let last = try await elsewhere.rotation(community)
            #expect(try await here.validate(first) != nil, "kept here until told (the event has not arrived)")

            let bus = EventBus(instanceID: "test", logger: Logger(label: "test"), metrics: NOOPMetricsHandler.instance)
            let hub = WebSocketHub(maxQueuedBytes: 1 << 20, logger: Logger(label: "test"), metrics: NOOPMetricsHandler.instance)
            let rotation = OverlayKeyRotation(bus: bus, hub: hub, keys: here, logger: Logger(label: "test"))
            let envelope = try #require(OverlayKeyRotation.announce(last, on: bus))
            #expect(rotation.handle(envelope)?.communityID == community)
            #expect(try await here.validate(first) == nil, "rotated out twice: refused at once")
            #expect(try await here.validate(last.key)?.inGracePeriod == false)
        }
    }

    /// A lookup that was under way when a rotation happened is not kept: the next caller looks again.
    @Test func aLookupOverlappingARotationIsNotKept() async throws {
        let cache = OverlayKeyCache(ttl: 60)
        let (started, startedContinuation) = AsyncStream<Void>.makeStream()
        let (release, releaseContinuation) = AsyncStream<Void>.makeStream()
        let stale = OverlayKeys.Validation(communityID: 7, inGracePeriod: false)
        let calls = Mutex(0)
        async let first = cache.validation(for: "h", now: 100) {
            guard calls.withLock({ $0 += 1; return $0 }) == 1 else { return nil }
            startedContinuation.yield()
            for await _ in release { break }
            return stale
        }
        for await _ in started { break }
        cache.forgetAll()
        releaseContinuation.yield()
        // The first caller's own lookup was overtaken by the rotation: it looked again (and got nil).
        let firstAnswer = try await first
        #expect(firstAnswer == nil)
        #expect(cache.lookups == 2)
        #expect(try await cache.validation(for: "h", now: 101) { Issue.record("looked up although kept"); return stale } == nil)
        // A rotated-out key's kept answer ends with its grace period.
        let graced = OverlayKeys.Validation(communityID: 7, inGracePeriod: true, validUntil: 150)
        #expect(try await cache.validation(for: "g", now: 100) { graced } == graced)
        #expect(try await cache.validation(for: "g", now: 150) { graced } == nil)
    }

    @Test(arguments: ["", "abc", String(repeating: "g", count: 64), String(repeating: "0", count: 63), String(repeating: "0", count: 65), "'; DROP TABLE overlay_keys; --"])
    func malformedKeysAreInvalid(key: String) async throws {
        try await withKeys(.sqlite) { keys, _, database in
            _ = try await OverlayAdmin.create(name: "c", database: database, keys: keys, communities: nil)
            #expect(try await keys.validate(key) == nil)
        }
    }

    @Test func onlyTheHashIsStored() async throws {
        try await withKeys(.sqlite) { keys, _, database in
            let (_, key) = try await OverlayAdmin.create(name: "c", database: database, keys: keys, communities: nil)
            let row = try #require(try await database.sql.raw("SELECT current_hash, current_prefix FROM overlay_keys").first())
            let hash = try row.decode(column: "current_hash", as: String.self)
            #expect(hash != key && hash.count == 64)
            #expect(try row.decode(column: "current_prefix", as: String.self) == String(key.prefix(8)))
        }
    }
}

@Suite struct OverlayPageTests {
    @Test func userSuppliedStringsAreEscaped() throws {
        var style = BrowserSource.Style()
        style.maxLines = 2
        let hostile = try BrowserSource.testing(id: 1, name: #""><script>alert(1)</script>"#, kind: .web,
                                                url: #"https://evil.example/" onload="alert(2)"#)
        let javascript = try BrowserSource.testing(id: 2, name: "js", kind: .web, url: "javascript:alert(3)")
        let captions = try BrowserSource.testing(id: 3, name: "captions", kind: .captions, url: nil, style: style)
        let rendered = OverlayPage.render(sources: [hostile, javascript, captions], streamLinks: [:], captionsOnly: false)
        let page = rendered.page(communityID: 7, key: "</script><script>alert(4)</script>")
        #expect(!page.contains("<script>alert"), "no injected script element")
        #expect(!page.contains(#"" onload=""#), "no attribute break-out")
        #expect(page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"))
        #expect(!page.contains("javascript:"), "non-http(s) URLs are dropped")
        #expect(page.contains("\\u003c/script\\u003e"), "the settings block cannot close its script element")
        #expect(rendered.csp.contains("frame-src https://evil.example"))
        #expect(rendered.csp.contains("script-src 'sha256-"))
        #expect(!rendered.csp.contains("unsafe-inline'; connect") || rendered.csp.contains("style-src 'unsafe-inline'"))
        #expect(rendered.sourcesServed == 2)
    }

    @Test(arguments: ["red; background:url(x)", "#12345g", "expression(alert(1))", "rgb(1,2,3);x:y"])
    func unsafeColoursAreRefused(colour: String) {
        var style = BrowserSource.Style()
        style.color = colour
        #expect(throws: HubError.self) { try style.validate() }
    }
}

extension BrowserSource {
    static func testing(id: Int64, name: String, kind: Kind, url: String?, style: Style = .init()) throws -> BrowserSource {
        BrowserSource(id: id, communityID: 7, name: name, kind: kind, url: url, streamID: nil, recordingID: nil,
                      x: 0, y: 0, width: 640, height: 360, z: Int(id), visible: true, style: style)
    }
}
