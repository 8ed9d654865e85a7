import Foundation
import Testing
import _StrataABIKit

@Suite("ABI tables")
struct TableTests {
    @Test("every target has a table that covers exactly the catalogue", arguments: Targets.all.map(\.name))
    func tableCoversCatalogue(name: String) throws {
        let target = try #require(Targets.named(name))
        let table = try ABITable.load(named: name, root: repositoryRoot)
        try Generator.validate(table, target: target)
        #expect(table.target.pointerWidth == target.pointerWidth)
        #expect(table.target.endianness == target.endianness)
        #expect(table.provenance.command.contains(name), "provenance must name the command for \(name)")
        if target.isGenerated {
            #expect(table.verified.hasPrefix("compiled"), "\(name) is generated but says: \(table.verified)")
        } else {
            #expect(table.verified.hasPrefix("unverified: transcribed from"), "\(name): \(table.verified)")
        }
    }

    @Test("tables are stored in canonical form (sorted keys, as the generator writes them)", arguments: Targets.all.map(\.name))
    func tablesAreCanonical(name: String) throws {
        let url = repositoryRoot.appendingPathComponent("abi-tables/\(name).json")
        let data = try Data(contentsOf: url)
        let table = try ABITable.decode(data)
        #expect(try table.encoded() == data, "\(url.path) is not canonical: run `make abi-generate`")
    }

    @Test("generated headers and Swift sources are up to date with the tables")
    func derivedFilesAreUpToDate() throws {
        let stale = try Generator.stale(root: repositoryRoot)
        #expect(stale.isEmpty, "out of date: \(stale) — run `make abi-generate`")
    }

    @Test("the facts the seeds got wrong are recorded per target")
    func knownDifferences() throws {
        let linux = try ABITable.load(named: "linux-gnu-x86_64", root: repositoryRoot)
        let darwin = try ABITable.load(named: "darwin-arm64", root: repositoryRoot)
        let arm64 = try ABITable.load(named: "linux-gnu-aarch64", root: repositoryRoot)
        #expect(linux.constants["O_NONBLOCK"] == .some(0x800))
        #expect(darwin.constants["O_NONBLOCK"] == .some(4))
        #expect(linux.constants["EAGAIN"] == .some(11))
        #expect(darwin.constants["EAGAIN"] == .some(35))
        #expect(linux.constants["MSG_NOSIGNAL"] == .some(0x4000))
        #expect(darwin.constants["SOCK_NONBLOCK"] == .some(nil))  // fcntl after socket()/accept() there
        #expect(darwin.constants["SO_NOSIGPIPE"] != .some(nil))
        #expect(linux.constants["SO_NOSIGPIPE"] == .some(nil))
        #expect((linux.types["pthread_mutex_t"] ?? nil)?.size == 40)
        #expect((darwin.types["pthread_mutex_t"] ?? nil)?.size == 64)
        #expect((linux.types["struct sockaddr_in"] ?? nil)?.fields["sin_len"] == nil)
        #expect((darwin.types["struct sockaddr_in"] ?? nil)?.fields["sin_len"] == [0, 1])
        #expect((linux.types["struct epoll_event"] ?? nil)?.size == 12)
        #expect((arm64.types["struct epoll_event"] ?? nil)?.size == 16)
        #expect((darwin.types["struct kevent"] ?? nil)?.size == 32)
        let freebsd = try ABITable.load(named: "freebsd-x86_64", root: repositoryRoot)
        #expect((freebsd.types["struct kevent"] ?? nil)?.size == 64)
        for t in Targets.all where t.family == .linux {
            let table = try ABITable.load(named: t.name, root: repositoryRoot)
            #expect((table.types["struct io_uring_sqe"] ?? nil)?.size == 64, "\(t.name)")
            #expect((table.types["struct io_uring_cqe"] ?? nil)?.size == 16, "\(t.name)")
        }
    }
}
