#if canImport(Glibc)
import Glibc
#endif
import CStrataMbedTLS
import Testing

@testable import StrataTLS

/// The client's fail-closed matrix, in memory: each bad server certificate is refused with
/// the right reason, and the good ones pass. (The interop suite repeats the matrix against
/// real peers over TCP.)
@Suite struct FailClosedTests {
    /// (server chain file stem, name the client verifies, expected reason fragment or nil for success)
    static let matrix: [(String, String, String?)] = [
        ("server", "localhost", nil),
        ("server", "strata.test", nil),
        ("server", "127.0.0.1", nil),
        ("rsa-server", "localhost", nil),
        ("ecdsa-p384", "localhost", nil),
        ("selfsigned", "localhost", "not trusted"),
        ("untrusted", "localhost", "not trusted"),
        ("server-leaf-only", "localhost", "not trusted"),
        ("expired", "localhost", "expired"),
        ("notyet", "localhost", "not yet valid"),
        ("wrongname", "localhost", "hostname mismatch: wanted localhost, certificate names api.example.org"),
        ("server", "127.0.0.2", "hostname mismatch: wanted 127.0.0.2"),
        ("server", "example.com", "hostname mismatch"),
        ("cn-only", "localhost", "hostname mismatch"),
        ("wildcard", "a.strata.test", nil),
        ("wildcard", "strata.test", "hostname mismatch"),
        ("wildcard", "a.b.strata.test", "hostname mismatch"),
        ("bad-wildcard", "a.strata.test", "hostname mismatch"),
        ("intermediate-not-ca", "localhost", "not trusted"),
        // mbedTLS's server will not present a certificate whose EKU excludes serverAuth (the
        // handshake fails on the server); the client's refusal is shown against openssl
        // s_server in TLSInteropTests.
        ("eku-client-only", "localhost", "server-refuses"),
        ("rsa1024", "localhost", "too weak"),
        ("sha1", "localhost", "forbidden hash"),
    ]

    @Test(arguments: matrix.indices)
    func clientRefusesBadCertificates(_ index: Int) throws {
        let (stem, host, expected) = Self.matrix[index]
        let pki = try TestPKI.shared
        // The server must load the certificate even when it is bad (expired, weak).
        let keyStem = stem == "server-leaf-only" ? "server" : stem
        let serverConfig = try TestServers.permissive(chain: try pki.path("\(stem).pem"), key: try pki.path("\(keyStem).key"))
        let clientConfig = try TLSConfiguration.client(trustRoots: .file(try pki.path("root.pem")))
        var server = try TLSSession(server: serverConfig)
        var client = try TLSSession(client: clientConfig, serverName: host)
        let outcome = runHandshake(client: &client, server: &server)
        if expected == "server-refuses" {
            #expect(outcome.server != nil && outcome.client != nil, "\(stem): \(String(describing: outcome.client))")
        } else if let expected {
            let error = try #require(outcome.client, "\(stem) for \(host) was accepted")
            #expect(error.kind == .verification, "\(error)")
            #expect(error.description.contains(expected), "\(stem) for \(host): \(error)")
            let complete = client.isHandshakeComplete
            #expect(!complete)
        } else {
            #expect(outcome.completed, "\(stem) for \(host): \(String(describing: outcome.client)) / \(String(describing: outcome.server))")
        }
    }

    @Test func ownCertificateProblemsAreConfigurationErrorsNamingTheFile() throws {
        let pki = try TestPKI.shared
        func error(_ chain: String, _ key: String) throws -> TLSError? {
            let c = try pki.path(chain), k = try pki.path(key)
            return #expect(throws: TLSError.self) {
                _ = try TLSConfiguration.server(identity: .pemFiles(certificateChain: c, privateKey: k))
            }
        }
        let mismatch = try error("server.pem", "rsa-server.key")
        #expect(mismatch?.kind == .configuration)
        #expect(mismatch?.message.contains("rsa-server.key") == true && mismatch?.message.contains("does not match") == true, "\(String(describing: mismatch))")
        let expired = try error("expired.pem", "expired.key")
        #expect(expired?.message.contains("expired.pem") == true && expired?.message.contains("expired on") == true, "\(String(describing: expired))")
        let notYet = try error("notyet.pem", "notyet.key")
        #expect(notYet?.message.contains("not valid before") == true)
        let weak = try error("rsa1024.pem", "rsa1024.key")
        #expect(weak?.message.contains("RSA") == true)
        let missing = #expect(throws: TLSError.self) {
            _ = try TLSConfiguration.server(identity: .pemFiles(certificateChain: "/nonexistent/chain.pem", privateKey: "/nonexistent/key.pem"))
        }
        #expect(missing?.message.contains("/nonexistent/chain.pem") == true)
        #expect(missing?.message.contains("No such file") == true)
        let garbage = #expect(throws: TLSError.self) {
            _ = try TLSConfiguration.server(identity: .pem(certificateChain: Array("not a certificate".utf8), privateKey: []))
        }
        #expect(garbage?.message.contains("cannot parse the certificate chain") == true)
        let badCA = #expect(throws: TLSError.self) { _ = try TLSConfiguration.client(trustRoots: .file("/nonexistent/ca.pem")) }
        #expect(badCA?.message.contains("/nonexistent/ca.pem") == true)
        #expect(throws: TLSError.self) { _ = try TLSConfiguration.client(trustRoots: .directory("/nonexistent-dir")) }
        var options = TLSOptions()
        options.curves = []
        let noCurves = #expect(throws: TLSError.self) {
            _ = try TLSConfiguration.client(trustRoots: .file(try pki.path("root.pem")), options: options)
        }
        #expect(noCurves?.message.contains("TLSOptions.curves") == true)
        #expect(throws: TLSError.self) { _ = try TLSConfiguration.client(trustRoots: .file(try pki.path("root.pem")), alpn: [""]) }
    }

    @Test func trustRootsFromDirectoryBytesAndSystem() throws {
        let pki = try TestPKI.shared
        let dir = try TestServers.directory(with: ["root.pem"])
        for roots in [TLSTrustRoots.directory(dir), .pem(try pki.bytes("root.pem"))] {
            let client = try TLSConfiguration.client(trustRoots: roots)
            var server = try TLSSession(server: try TLSSessionTests.server())
            var session = try TLSSession(client: client, serverName: "localhost")
            #expect(runHandshake(client: &session, server: &server).completed)
        }
        // The system bundle loads, and does not trust the test PKI.
        let system = try TLSConfiguration.client()
        var server = try TLSSession(server: try TLSSessionTests.server())
        var session = try TLSSession(client: system, serverName: "localhost")
        let outcome = runHandshake(client: &session, server: &server)
        #expect(outcome.client?.kind == .verification)
    }

    @Test func hostnameRules() {
        var names = CertificateNames()
        names.dns = ["*.strata.test", "exact.example.com", "*.test"]
        names.ips = [[127, 0, 0, 1]]
        #expect(HostnameMatch.matches(names, host: "a.strata.test"))
        #expect(HostnameMatch.matches(names, host: "A.Strata.Test."))
        #expect(!HostnameMatch.matches(names, host: "strata.test"))
        #expect(!HostnameMatch.matches(names, host: "a.b.strata.test"))
        #expect(!HostnameMatch.matches(names, host: "x.test"), "a wildcard needs two labels after it")
        #expect(HostnameMatch.matches(names, host: "exact.example.com"))
        #expect(!HostnameMatch.matches(names, host: "example.com"))
        #expect(HostnameMatch.matches(names, host: "127.0.0.1"))
        #expect(!HostnameMatch.matches(names, host: "127.0.0.2"))
        var dnsOnly = CertificateNames()
        dnsOnly.dns = ["127.0.0.1"]
        #expect(!HostnameMatch.matches(dnsOnly, host: "127.0.0.1"), "an IP literal matches only iPAddress names")
        var partial = CertificateNames()
        partial.dns = ["a*.strata.test"]
        #expect(!HostnameMatch.matches(partial, host: "ab.strata.test"))
    }
}

/// Test helpers for server configurations and CA directories.
enum TestServers {
    /// A server whose certificate `TLSConfiguration.server` itself would refuse (expired,
    /// weak), so the matrix can show that clients refuse it too.
    static func permissive(chain: String, key: String) throws -> TLSConfiguration {
        var options = TLSOptions()
        options.sessionTickets = false
        options.sessionCacheSize = 0
        return try TLSConfiguration.serverSkippingOwnCertificatePolicy(
            identity: .pemFiles(certificateChain: chain, privateKey: key), options: options)
    }

    static func directory(with files: [String]) throws -> String {
        let pki = try TestPKI.shared
        let dir = "/tmp/strata-tls-ca-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        #expect(mkdir(dir, 0o700) == 0)
        for f in files {
            let bytes = try pki.bytes(f)
            let fd = open("\(dir)/\(f)", O_WRONLY | O_CREAT | O_TRUNC, 0o600)
            #expect(fd >= 0)
            _ = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            close(fd)
        }
        return dir
    }
}
