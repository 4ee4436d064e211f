@testable import Registry
import Testing

@Suite struct StreamLocksTests {
    @Test func locksLapseAfterThirtySecondsWithoutRenewal() {
        let locks = StreamLocks(origin: "here")
        guard case .granted(let first) = locks.acquire(7, holder: "user:a", now: 1000) else { Issue.record("not granted"); return }
        #expect(first.expiresAt == 1030)
        #expect(locks.acquire(7, holder: "user:b", now: 1010) == .heldBy(first))
        // Renewal by the holder pushes the expiry out.
        guard case .granted(let renewed) = locks.acquire(7, holder: "user:a", now: 1020) else { Issue.record("not renewed"); return }
        #expect(renewed.expiresAt == 1050)
        #expect(locks.expire(now: 1049).isEmpty)
        #expect(locks.lock(on: 7, now: 1049) != nil)
        #expect(locks.expire(now: 1050).map(\.streamID) == [7], "this instance announces the expiry of its own locks")
        #expect(locks.lock(on: 7, now: 1050) == nil)
        guard case .granted = locks.acquire(7, holder: "user:b", now: 1051) else { Issue.record("a lapsed lock must be free"); return }
    }

    @Test func locksFromOtherInstancesLapseSilentlyHere() {
        let locks = StreamLocks(origin: "here")
        locks.apply(locked: .init(streamID: 3, holder: "user:c", expiresAt: 2000, origin: "there"))
        #expect(locks.acquire(3, holder: "user:a", now: 1990) == .heldBy(.init(streamID: 3, holder: "user:c", expiresAt: 2000, origin: "there")))
        #expect(locks.expire(now: 2001).isEmpty, "the granting instance announces it, not this one")
        #expect(locks.lock(on: 3, now: 2001) == nil)
        #expect(!locks.release(3, holder: "user:a"))
    }
}
