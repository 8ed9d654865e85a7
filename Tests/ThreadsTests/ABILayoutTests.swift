// Proves the layouts StrataThreads allocates by (MemoryLayout of the imported pthread types) and
// the errno names it prints against the host's ABI table, abi-tables/<target>.json (DESIGN §2).
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation
@testable import StrataThreads
import Testing

#if os(Linux) && canImport(Glibc) && arch(x86_64)
private let hostTable = "linux-gnu-x86_64"
#elseif os(Linux) && canImport(Glibc) && arch(arm64)
private let hostTable = "linux-gnu-aarch64"
#elseif os(Linux) && canImport(Glibc) && arch(arm)
private let hostTable = "linux-gnu-armv7"
#elseif os(Linux) && canImport(Glibc) && arch(riscv64)
private let hostTable = "linux-gnu-riscv64"
#elseif os(Linux) && canImport(Glibc) && arch(powerpc64le)
private let hostTable = "linux-gnu-ppc64le"
#elseif os(Linux) && canImport(Glibc) && arch(s390x)
private let hostTable = "linux-gnu-s390x"
#elseif os(Linux) && canImport(Glibc) && arch(i386)
private let hostTable = "linux-gnu-i686"
#elseif os(Linux) && canImport(Musl) && arch(x86_64)
private let hostTable = "linux-musl-x86_64"
#elseif canImport(Darwin) && arch(arm64)
private let hostTable = "darwin-arm64"
#elseif canImport(Darwin) && arch(x86_64)
private let hostTable = "darwin-x86_64"
#elseif os(FreeBSD) && arch(x86_64)
private let hostTable = "freebsd-x86_64"
#else
#error("StrataThreadsTests: no ABI table for this OS/arch/libc; add one to abi-tables/ and here")
#endif

/// The parts of the table these tests read.
private struct Table {
    let types: [String: (size: Int, alignment: Int)?]
    let constants: [String: Int64?]

    static func load() throws -> Table {
        var root = URL(fileURLWithPath: #filePath)
        for _ in 0..<3 { root.deleteLastPathComponent() }
        let url = root.appendingPathComponent("abi-tables/\(hostTable).json")
        let data = try Data(contentsOf: url)
        let json = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any], "\(url.path) is not a JSON object")
        let rawTypes = try #require(json["types"] as? [String: Any], "\(url.path) has no \"types\"")
        let rawConstants = try #require(json["constants"] as? [String: Any], "\(url.path) has no \"constants\"")
        var types: [String: (size: Int, alignment: Int)?] = [:]
        for (name, value) in rawTypes {
            if let layout = value as? [String: Any], let size = layout["size"] as? Int, let alignment = layout["alignment"] as? Int {
                types[name] = (size, alignment)
            } else {
                types.updateValue(nil, forKey: name)
            }
        }
        var constants: [String: Int64?] = [:]
        for (name, value) in rawConstants {
            // updateValue, not subscript assignment: a JSON null ("not defined on this target")
            // must stay in the dictionary as .some(nil), not remove the key.
            constants.updateValue((value as? NSNumber).map { $0.int64Value }, forKey: name)
        }
        return Table(types: types, constants: constants)
    }
}

private struct Layout: CustomTestStringConvertible, Sendable {
    let name: String
    let size: Int
    let alignment: Int
    var testDescription: String { name }
}

private let importedLayouts: [Layout] = [
    Layout(name: "pthread_mutex_t", size: MemoryLayout<pthread_mutex_t>.size, alignment: MemoryLayout<pthread_mutex_t>.alignment),
    Layout(name: "pthread_mutexattr_t", size: MemoryLayout<pthread_mutexattr_t>.size, alignment: MemoryLayout<pthread_mutexattr_t>.alignment),
    Layout(name: "pthread_cond_t", size: MemoryLayout<pthread_cond_t>.size, alignment: MemoryLayout<pthread_cond_t>.alignment),
    Layout(name: "pthread_condattr_t", size: MemoryLayout<pthread_condattr_t>.size, alignment: MemoryLayout<pthread_condattr_t>.alignment),
    Layout(name: "pthread_rwlock_t", size: MemoryLayout<pthread_rwlock_t>.size, alignment: MemoryLayout<pthread_rwlock_t>.alignment),
    Layout(name: "pthread_rwlockattr_t", size: MemoryLayout<pthread_rwlockattr_t>.size, alignment: MemoryLayout<pthread_rwlockattr_t>.alignment),
    Layout(name: "pthread_attr_t", size: MemoryLayout<pthread_attr_t>.size, alignment: MemoryLayout<pthread_attr_t>.alignment),
    Layout(name: "pthread_t", size: MemoryLayout<pthread_t>.size, alignment: MemoryLayout<pthread_t>.alignment),
]

/// Every errno name the ABI catalogue records (Tools/strata-abi Catalogue.errnoNames).
private let errnoNames = [
    "EPERM", "ENOENT", "ESRCH", "EINTR", "EIO", "ENXIO", "E2BIG", "ENOEXEC", "EBADF", "ECHILD", "EAGAIN",
    "EWOULDBLOCK", "ENOMEM", "EACCES", "EFAULT", "EBUSY", "EEXIST", "EXDEV", "ENODEV", "ENOTDIR", "EISDIR",
    "EINVAL", "ENFILE", "EMFILE", "ENOTTY", "ETXTBSY", "EFBIG", "ENOSPC", "ESPIPE", "EROFS", "EMLINK", "EPIPE",
    "EDOM", "ERANGE", "EDEADLK", "ENAMETOOLONG", "ENOLCK", "ENOSYS", "ENOTEMPTY", "ELOOP", "ENOMSG", "EIDRM",
    "ENODATA", "ETIME", "EPROTO", "EBADMSG", "EOVERFLOW", "EILSEQ", "EBADFD", "ENOTSOCK", "EDESTADDRREQ",
    "EMSGSIZE", "EPROTOTYPE", "ENOPROTOOPT", "EPROTONOSUPPORT", "ESOCKTNOSUPPORT", "EOPNOTSUPP", "ENOTSUP",
    "EPFNOSUPPORT", "EAFNOSUPPORT", "EADDRINUSE", "EADDRNOTAVAIL", "ENETDOWN", "ENETUNREACH", "ENETRESET",
    "ECONNABORTED", "ECONNRESET", "ENOBUFS", "EISCONN", "ENOTCONN", "ESHUTDOWN", "ETOOMANYREFS", "ETIMEDOUT",
    "ECONNREFUSED", "EHOSTDOWN", "EHOSTUNREACH", "EALREADY", "EINPROGRESS", "ESTALE", "EDQUOT", "ECANCELED",
    "EOWNERDEAD", "ENOTRECOVERABLE", "ENOTCAPABLE",
]

@Suite("ABI table: pthread layouts and errno names")
struct ABILayoutTests {
    @Test("MemoryLayout of the imported pthread types matches the host's ABI table", arguments: importedLayouts)
    fileprivate func layout(_ imported: Layout) throws {
        let table = try Table.load()
        let entry = try #require(table.types[imported.name], "\(hostTable).json does not record \(imported.name)")
        let recorded = try #require(entry, "\(hostTable).json says \(imported.name) does not exist on this target")
        #expect(recorded.size == imported.size, "table \(imported.name).size = \(recorded.size), headers = \(imported.size)")
        #expect(
            recorded.alignment == imported.alignment,
            "table \(imported.name).alignment = \(recorded.alignment), headers = \(imported.alignment)")
    }

    @Test("the heap cells are allocated with the table's size and alignment")
    func cellsMatchTable() throws {
        let table = try Table.load()
        let mutex = try #require(table.types["pthread_mutex_t"] ?? nil)
        let cond = try #require(table.types["pthread_cond_t"] ?? nil)
        let rwlock = try #require(table.types["pthread_rwlock_t"] ?? nil)
        // The cells are typed pointers to the imported types, so allocation uses their stride.
        #expect(MemoryLayout<pthread_mutex_t>.stride >= mutex.size)
        #expect(MemoryLayout<pthread_cond_t>.stride >= cond.size)
        #expect(MemoryLayout<pthread_rwlock_t>.stride >= rwlock.size)
        let m = Mutex()
        let c = ConditionVariable()
        let r = RWLock()
        #expect(UInt(bitPattern: m._cell.pointer) % UInt(mutex.alignment) == 0)
        #expect(UInt(bitPattern: c._condition) % UInt(cond.alignment) == 0)
        #expect(UInt(bitPattern: r._lock) % UInt(rwlock.alignment) == 0)
    }

    @Test("every errno name StrataThreads prints has the table's value for that name")
    func errnoNamesMatchTable() throws {
        let table = try Table.load()
        var checked = 0
        for name in errnoNames {
            guard let entry = table.constants[name] else {
                Issue.record("\(hostTable).json does not record \(name)")
                continue
            }
            guard let value = entry else { continue }  // not defined on this target
            let printed = try #require(
                ThreadsError.name(ofErrno: CInt(value)), "no name for errno \(value) (\(name) in the table)")
            // Aliases (EWOULDBLOCK = EAGAIN) print as the preferred name, which must have the same value.
            #expect(table.constants[printed] == .some(.some(value)), "\(printed) printed for \(value), the table's \(name)")
            checked += 1
        }
        #expect(checked > 70)
    }

    @Test("the pthread and clock constants used here match the table")
    func constants() throws {
        let table = try Table.load()
        #expect(table.constants["PTHREAD_MUTEX_ERRORCHECK"] == .some(.some(Int64(PTHREAD_MUTEX_ERRORCHECK))))
        #expect(table.constants["CLOCK_MONOTONIC"] == .some(.some(Int64(CLOCK_MONOTONIC))))
        #expect(table.constants["ETIMEDOUT"] == .some(.some(Int64(ETIMEDOUT))))
        #expect(table.constants["EBUSY"] == .some(.some(Int64(EBUSY))))
    }
}
