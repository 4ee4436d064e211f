import HubCore
import Testing

/// Resolves names from a fixed table, so tests can make any name point anywhere.
struct TableResolver: HostResolver {
    let table: [String: [IPAddress]]
    func resolve(_ host: String) async throws -> [IPAddress] {
        guard let addresses = table[host] else { throw URLRefusal.unresolvable(host) }
        return addresses
    }
}

@Suite struct SourceURLGuardTests {
    let resolver = TableResolver(table: [
        "cdn.example.com": [.v4(0x5DB8_D822)],                           // 93.184.216.34
        "rebind.example.com": [.v4(0x5DB8_D822), .v4(0x7F00_0001)],      // one public, one loopback
        "internal.example.com": [.v4(0x0A00_0005)],                      // 10.0.0.5
        "v6.example.com": [IPAddress.parseIPv6("2606:4700::1111")!],
        "ula.example.com": [IPAddress.parseIPv6("fd12:3456::1")!],
        "mapped.example.com": [IPAddress.parseIPv6("::ffff:192.168.1.1")!],
    ])

    var strict: SourceURLGuard { SourceURLGuard(allowPrivate: false, resolver: resolver) }

    @Test(arguments: [
        "http://127.0.0.1/", "http://127.1/", "http://2130706433/", "http://0x7f000001/", "http://0x7f.0.0.1/",
        "http://0177.0.0.1/", "http://017700000001/", "http://127.0.0.1.:8080/x", "http://127.0.0.%31/",
        "http://0/", "http://0.0.0.0/", "http://10.1.2.3/", "http://172.16.0.1/", "http://172.31.255.255/",
        "http://192.168.0.1/", "http://100.64.0.1/", "http://169.254.169.254/latest/meta-data/",
        "http://224.0.0.1/", "http://255.255.255.255/", "http://[::1]/", "http://[::]/", "http://[0:0:0:0:0:0:0:1]/",
        "http://[::ffff:127.0.0.1]/", "http://[::ffff:7f00:1]/", "http://[::ffff:10.0.0.1]/", "http://[64:ff9b::a00:1]/",
        "http://[2002:7f00:1::]/", "http://[fc00::1]/", "http://[fd00:ec2::254]/", "http://[fe80::1]/", "http://[ff02::1]/",
        "http://localhost/", "http://LOCALHOST:8080/", "http://foo.localhost/", "http://metadata.google.internal/",
        "http://svc.internal/", "http://internal.example.com/", "http://rebind.example.com/",
        "http://ula.example.com/", "http://mapped.example.com/",
    ])
    func hostileURLIsRefused(url: String) async {
        await #expect(throws: URLRefusal.self) { _ = try await strict.check(url) }
    }

    @Test(arguments: [
        "file:///etc/passwd", "gopher://example.com/", "ftp://example.com/", "javascript:alert(1)",
        "data:text/html,hi", "//example.com/x", "example.com", "",
    ])
    func nonHTTPSchemeIsRefused(url: String) async {
        await #expect(throws: URLRefusal.self) { _ = try await strict.check(url) }
    }

    @Test(arguments: [
        "http://user:pass@cdn.example.com/", "http://cdn.example.com@127.0.0.1/", "http://cdn.example.com:80@10.0.0.1/",
        "http://cdn.example.com\\@127.0.0.1/", "http://cdn.example.com /", "http://cdn.example.com:99999/",
        "http://[::1/", "http://256.256.256.256/", "http://1.2.3.4.5/", "http://example.123/",
    ])
    func trickURLIsRefused(url: String) async {
        await #expect(throws: URLRefusal.self) { _ = try await strict.check(url) }
    }

    @Test func publicURLsPass() async throws {
        let checked = try await strict.check("https://cdn.example.com/live/index.m3u8?token=1")
        #expect(checked.host == "cdn.example.com")
        #expect(checked.port == 443)
        #expect(checked.addresses == [.v4(0x5DB8_D822)])
        let v6 = try await strict.check("http://v6.example.com:8080/a")
        #expect(v6.port == 8080)
        let literal = try await strict.check("http://93.184.216.34/")
        #expect(literal.addresses == [.v4(0x5DB8_D822)])
        let mappedPublic = try await strict.check("http://[::ffff:93.184.216.34]/")
        #expect(mappedPublic.addresses.count == 1)
    }

    @Test func userinfoTrickNamesTheRealHost() async {
        await #expect(throws: URLRefusal.self) { _ = try await strict.check("http://example.com@127.0.0.1/") }
    }

    @Test func realResolverRefusesLocalhost() async {
        let guardWithSystemResolver = SourceURLGuard(allowPrivate: false)
        await #expect(throws: URLRefusal.self) { _ = try await guardWithSystemResolver.check("http://localhost./") }
    }

    @Test func allowingPrivateSourcesAdmitsLoopbackButNeverMetadata() async throws {
        let relaxed = SourceURLGuard(allowPrivate: true, resolver: resolver)
        _ = try await relaxed.check("http://127.0.0.1:8080/stream.m3u8")
        _ = try await relaxed.check("http://internal.example.com/")
        await #expect(throws: URLRefusal.self) { _ = try await relaxed.check("http://169.254.169.254/latest/") }
        await #expect(throws: URLRefusal.self) { _ = try await relaxed.check("http://[fd00:ec2::254]/") }
        await #expect(throws: URLRefusal.self) { _ = try await relaxed.check("http://metadata.google.internal/") }
        await #expect(throws: URLRefusal.self) { _ = try await relaxed.check("file:///etc/passwd") }
    }

    @Test(arguments: [
        ("2130706433", "127.0.0.1"), ("0x7f.1", "127.0.0.1"), ("0177.0.0.01", "127.0.0.1"), ("127.1", "127.0.0.1"),
        ("10.0.258", "10.0.1.2"), ("0xC0.0xA8.1", "192.168.0.1"), ("1.2.3.4", "1.2.3.4"),
    ])
    func ipv4ParsingFollowsBrowsers(text: String, expected: String) {
        #expect(IPAddress.parseIPv4(text)?.description == expected)
    }

    @Test(arguments: ["1.2.3.256", "1.2.65536", "08.1.1.1", "0x", "1..2.3"])
    func invalidIPv4IsRejected(text: String) {
        if text == "0x" {
            #expect(IPAddress.parseIPv4(text)?.description == "0.0.0.0")
        } else {
            #expect(IPAddress.parseIPv4(text) == nil)
        }
    }
}
