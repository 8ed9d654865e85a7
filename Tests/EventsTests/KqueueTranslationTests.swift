// kqueue's pure translation layer, tested on every platform (it runs on Linux CI): the Darwin and
// FreeBSD kevent layouts and constants against abi-tables/, byte-exact changelists, and
// reported kevents turned into readiness and then completions by the shared engine.
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation
import Testing
import StrataSockets
@testable import StrataEvents

/// The repository root, from this file's real path (the file may be reached through a symlink).
private let kqueueTablesRepositoryRoot: URL = {
    var url = URL(fileURLWithPath: #filePath).resolvingSymlinksInPath()
    for _ in 0..<3 { url.deleteLastPathComponent() }  // KqueueTranslationTests.swift, EventsTests, Tests
    return url
}()

/// The parts of one abi-tables/<target>.json that kqueue's translation depends on.
private struct KqueueABITable {
    var name: String
    var endianness: String
    /// C name → value; nil for JSON null (not defined on that target).
    var constants: [String: Int64?]
    var keventSize: Int
    var keventAlignment: Int
    /// Field name → (offset, size).
    var keventFields: [String: (offset: Int, size: Int)]

    static func load(_ target: String) throws -> KqueueABITable {
        let url = kqueueTablesRepositoryRoot.appendingPathComponent("abi-tables/\(target).json")
        let data = try Data(contentsOf: url)
        let root = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any],
                                "\(url.path) is not a JSON object")
        let targetInfo = try #require(root["target"] as? [String: Any])
        let constantsJSON = try #require(root["constants"] as? [String: Any])
        var constants: [String: Int64?] = [:]
        for (key, value) in constantsJSON {
            constants[key] = (value as? NSNumber).map { $0.int64Value }
        }
        let types = try #require(root["types"] as? [String: Any])
        let kevent = try #require(types["struct kevent"] as? [String: Any], "\(target): no struct kevent")
        let fieldsJSON = try #require(kevent["fields"] as? [String: [Int]])
        var fields: [String: (offset: Int, size: Int)] = [:]
        for (key, pair) in fieldsJSON {
            fields[key] = (pair[0], pair[1])
        }
        return KqueueABITable(name: target, endianness: try #require(targetInfo["endianness"] as? String),
                           constants: constants,
                           keventSize: try #require((kevent["size"] as? NSNumber)?.intValue),
                           keventAlignment: try #require((kevent["alignment"] as? NSNumber)?.intValue),
                           keventFields: fields)
    }
}

/// Little-endian bytes of `value`, `count` of them.
private func bytesLE(_ value: UInt64, _ count: Int) -> [UInt8] {
    (0..<count).map { UInt8(truncatingIfNeeded: value >> (8 * UInt64($0))) }
}

/// A recording watcher: the engine's platform half, without a kernel.
private struct RecordingKqueueWatcher: ReadinessWatcher {
    var watched: [CInt] = []
    var unwatched: [CInt] = []
    mutating func watch(_ fd: CInt) -> Int32 {
        watched.append(fd)
        return 0
    }
    mutating func unwatch(_ fd: CInt) { unwatched.append(fd) }
}

@Suite("kqueue translation")
struct KqueueTranslationTests {
    static let platforms: [(table: String, translator: KqueueTranslator)] = [
        ("darwin-arm64", .darwin), ("darwin-x86_64", .darwin), ("freebsd-x86_64", .freeBSD),
    ]

    // MARK: - The hard-coded numbers equal the tables

    @Test("every kqueue constant equals the ABI table", arguments: [0, 1, 2])
    func constantsMatchTables(_ index: Int) throws {
        let (target, translator) = Self.platforms[index]
        let table = try KqueueABITable.load(target)
        let c = translator.constants
        let expected: [(String, Int64)] = [
            ("EVFILT_READ", Int64(c.filterRead)), ("EVFILT_WRITE", Int64(c.filterWrite)),
            ("EVFILT_USER", Int64(c.filterUser)), ("EV_ADD", Int64(c.add)), ("EV_DELETE", Int64(c.delete)),
            ("EV_CLEAR", Int64(c.clear)), ("EV_EOF", Int64(c.endOfFile)), ("EV_ERROR", Int64(c.error)),
            ("EV_RECEIPT", Int64(c.receipt)), ("NOTE_TRIGGER", Int64(c.noteTrigger)),
        ]
        for (name, value) in expected {
            let entry = try #require(table.constants[name], "\(target): \(name) is absent from the table")
            #expect(entry == value,
                    "\(target): table \(name) = \(String(describing: entry)), KqueueTranslation.swift = \(value)")
        }
    }

    @Test("the kevent layout equals the ABI table", arguments: [0, 1, 2])
    func layoutMatchesTables(_ index: Int) throws {
        let (target, translator) = Self.platforms[index]
        let table = try KqueueABITable.load(target)
        let layout = translator.layout
        #expect(table.endianness == "little", "\(target): encode/decode assume little-endian")
        #expect(table.keventSize == layout.size,
                "\(target): table sizeof(struct kevent) = \(table.keventSize), layout = \(layout.size)")
        #expect(table.keventAlignment == layout.alignment,
                "\(target): table alignment = \(table.keventAlignment), layout = \(layout.alignment)")
        let fields: [(String, KeventLayout.Field?)] = [
            ("ident", layout.ident), ("filter", layout.filter), ("flags", layout.flags), ("fflags", layout.fflags),
            ("data", layout.data), ("udata", layout.udata), ("ext", layout.ext),
        ]
        for (name, field) in fields {
            let entry = table.keventFields[name]
            let described = "table kevent.\(name) = \(String(describing: entry)), layout = \(String(describing: field))"
            #expect(entry?.offset == field?.offset && entry?.size == field?.size, "\(target): \(described)")
        }
        #expect(Set(table.keventFields.keys) == Set(fields.filter { $0.1 != nil }.map(\.0)),
                "\(target): the table has kevent fields the layout does not describe")
    }

    // MARK: - Changelists, byte-exact

    @Test("watching a descriptor encodes EV_ADD | EV_CLEAR for both filters (Darwin, 32 bytes)")
    func watchDarwin() {
        let t = KqueueTranslator.darwin
        var changes: [Kevent] = []
        t.appendWatch(of: 7, to: &changes)
        #expect(changes.count == 2)
        let read: [UInt8] = [
            0x07, 0, 0, 0, 0, 0, 0, 0,  // ident 7
            0xFF, 0xFF,  // EVFILT_READ -1
            0x21, 0x00,  // EV_ADD | EV_CLEAR
            0, 0, 0, 0,  // fflags
            0, 0, 0, 0, 0, 0, 0, 0,  // data
            0, 0, 0, 0, 0, 0, 0, 0,  // udata
        ]
        let write: [UInt8] = [
            0x07, 0, 0, 0, 0, 0, 0, 0,
            0xFE, 0xFF,  // EVFILT_WRITE -2
            0x21, 0x00,
            0, 0, 0, 0,
            0, 0, 0, 0, 0, 0, 0, 0,
            0, 0, 0, 0, 0, 0, 0, 0,
        ]
        #expect(t.encode(changes[0]) == read)
        #expect(t.encode(changes[1]) == write)
    }

    @Test("watching a descriptor encodes EV_ADD | EV_CLEAR for both filters (FreeBSD, 64 bytes with ext)")
    func watchFreeBSD() {
        let t = KqueueTranslator.freeBSD
        var changes: [Kevent] = []
        t.appendWatch(of: 1234, to: &changes)
        let ext = [UInt8](repeating: 0, count: 32)
        let read: [UInt8] = [0xD2, 0x04, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF, 0x21, 0x00, 0, 0, 0, 0]
            + [UInt8](repeating: 0, count: 16) + ext
        let write: [UInt8] = [0xD2, 0x04, 0, 0, 0, 0, 0, 0, 0xFE, 0xFF, 0x21, 0x00, 0, 0, 0, 0]
            + [UInt8](repeating: 0, count: 16) + ext
        #expect(t.encode(changes[0]) == read)
        #expect(t.encode(changes[1]) == write)
        #expect(read.count == 64)
    }

    @Test("the wakeup: EVFILT_USER registered with EV_ADD | EV_CLEAR | EV_RECEIPT, fired with NOTE_TRIGGER")
    func wakeChanges() {
        // Darwin: EVFILT_USER = -10 (0xFFF6); FreeBSD: -11 (0xFFF5).
        for (t, userFilter) in [(KqueueTranslator.darwin, UInt64(0xFFF6)), (KqueueTranslator.freeBSD, UInt64(0xFFF5))] {
            let tail = [UInt8](repeating: 0, count: t.layout.size - 32)
            // ident 42 | filter | flags (EV_ADD | EV_CLEAR | EV_RECEIPT = 0x61, or 0) | fflags | data | udata | ext
            let registration = bytesLE(42, 8) + bytesLE(userFilter, 2) + [0x61, 0x00] + bytesLE(0, 4)
                + bytesLE(0, 8) + bytesLE(0, 8) + tail
            let trigger = bytesLE(42, 8) + bytesLE(userFilter, 2) + [0x00, 0x00] + [0x00, 0x00, 0x00, 0x01]
                + bytesLE(0, 8) + bytesLE(0, 8) + tail
            #expect(t.encode(t.wakeRegistration(ident: 42)) == registration, "\(t.layout.size)-byte layout")
            #expect(t.encode(t.wakeTrigger(ident: 42)) == trigger, "\(t.layout.size)-byte layout")
        }
    }

    @Test("changes still queued for a closing descriptor are dropped, others kept")
    func dropPendingChanges() {
        let t = KqueueTranslator.freeBSD
        var changes: [Kevent] = []
        t.appendWatch(of: 5, to: &changes)
        t.appendWatch(of: 6, to: &changes)
        changes.append(t.wakeTrigger(ident: 5))  // a user event with the same number is not a watch of fd 5
        t.dropPendingChanges(for: 5, from: &changes)
        #expect(changes.map(\.ident) == [6, 6, 5])
        #expect(changes.last?.filter == t.constants.filterUser)
    }

    // MARK: - Reported events, byte-exact

    @Test("EV_EOF on the read filter decodes to readable with end of stream and the socket error", arguments: [0, 2])
    func decodeEndOfStream(_ index: Int) {
        let t = Self.platforms[index].translator
        // ident 9, EVFILT_READ, EV_ADD | EV_CLEAR | EV_EOF, fflags ECONNRESET (54 on Darwin and
        // FreeBSD), data 3 bytes still buffered.
        let bytes = bytesLE(9, 8) + [0xFF, 0xFF] + [0x21, 0x80] + bytesLE(54, 4) + bytesLE(3, 8)
            + bytesLE(0, 8)
            + [UInt8](repeating: 0, count: t.layout.size - 32)
        let event = t.decode(bytes)
        #expect(event == Kevent(ident: 9, filter: -1, flags: 0x8021, fflags: 54, data: 3))
        #expect(t.readiness(of: event, wakeIdent: 0) == .readable(fd: 9, endOfStream: true, pendingError: 54))
        #expect(t.encode(event) == bytes)
    }

    @Test("EV_EOF on the write filter decodes to writable with end of stream", arguments: [0, 2])
    func decodeWriteEndOfStream(_ index: Int) {
        let t = Self.platforms[index].translator
        let bytes = bytesLE(11, 8) + [0xFE, 0xFF] + [0x21, 0x80] + bytesLE(32, 4) + bytesLE(0, 8)
            + bytesLE(0, 8)
            + [UInt8](repeating: 0, count: t.layout.size - 32)
        let readiness = t.readiness(of: t.decode(bytes), wakeIdent: 0)
        #expect(readiness == .writable(fd: 11, endOfStream: true, pendingError: 32))
    }

    @Test("EV_ERROR decodes to a failed change with the negated errno, or a receipt when data is 0", arguments: [0, 2])
    func decodeError(_ index: Int) {
        let t = Self.platforms[index].translator
        let tail = [UInt8](repeating: 0, count: t.layout.size - 32)
        // EV_ERROR (0x4000) | EV_ADD | EV_CLEAR on EVFILT_WRITE of fd 13, data EBADF (9 on both).
        let failed = bytesLE(13, 8) + [0xFE, 0xFF] + [0x21, 0x40] + bytesLE(0, 4) + bytesLE(9, 8) + bytesLE(0, 8)
            + tail
        #expect(t.readiness(of: t.decode(failed), wakeIdent: 0) == .changeFailed(ident: 13, filter: -2, result: -9))
        let userFilter = UInt64(UInt16(bitPattern: t.constants.filterUser))
        let receipt = bytesLE(0, 8) + bytesLE(userFilter, 2) + [0x61, 0x40] + bytesLE(0, 4)
            + bytesLE(0, 8) + bytesLE(0, 8) + tail
        let applied = t.readiness(of: t.decode(receipt), wakeIdent: 0)
        #expect(applied == .changeApplied(ident: 0, filter: t.constants.filterUser))
    }

    @Test("the fired wakeup decodes to .wake; another EVFILT_USER identifier or filter is ignored", arguments: [0, 2])
    func decodeWake(_ index: Int) {
        let t = Self.platforms[index].translator
        let fired = Kevent(ident: 0, filter: t.constants.filterUser, flags: t.constants.add | t.constants.clear,
                           fflags: t.constants.noteTrigger)
        #expect(t.readiness(of: t.decode(t.encode(fired)), wakeIdent: 0) == .wake)
        #expect(t.readiness(of: fired, wakeIdent: 1) == .ignored)
        #expect(t.readiness(of: Kevent(ident: 3, filter: -7, flags: 0), wakeIdent: 0) == .ignored)  // EVFILT_TIMER
    }

    @Test("encode and decode are inverse on both layouts (FreeBSD keeps ext, Darwin has none)")
    func roundTrip() {
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<200 {
            let event = Kevent(ident: UInt64.random(in: 0...UInt64.max, using: &generator),
                               filter: Int16.random(in: Int16.min...Int16.max, using: &generator),
                               flags: UInt16.random(in: 0...UInt16.max, using: &generator),
                               fflags: UInt32.random(in: 0...UInt32.max, using: &generator),
                               data: Int64.random(in: Int64.min...Int64.max, using: &generator),
                               udata: UInt64.random(in: 0...UInt64.max, using: &generator),
                               ext: .init(e0: .random(in: 0...UInt64.max), e1: 1, e2: 2, e3: .max))
            #expect(KqueueTranslator.freeBSD.decode(KqueueTranslator.freeBSD.encode(event)) == event)
            var darwin = event
            darwin.ext = .init()
            #expect(KqueueTranslator.darwin.decode(KqueueTranslator.darwin.encode(event)) == darwin)
        }
    }

    // MARK: - kevent → completions, through the shared engine

    @Test("reported kevents become completions: readable, EV_EOF after data, failed change", arguments: [0, 2])
    func keventsBecomeCompletions(_ index: Int) throws {
        let t = Self.platforms[index].translator
        let pair = try Socket.makePair(kind: .stream)
        let engine = ReadinessEngine(watcher: RecordingKqueueWatcher(), drainLimit: 64)
        let buffer = IOBuffer(capacity: 16)
        let fd = pair.second.descriptor
        var completions: [RawCompletion] = []

        // Nothing to read: the receive parks and the descriptor is watched, once.
        engine.submit(Submission(userData: 1, kind: .receive, fd: fd, pointer: buffer.base, length: 16),
                      completions: &completions)
        #expect(completions.isEmpty)
        #expect(engine.watcher.watched == [fd])

        // Data arrives; the kernel reports EVFILT_READ (bytes as the platform lays them out).
        _ = try pair.first.send(Array("hi".utf8))
        let readable = t.decode(t.encode(Kevent(ident: UInt64(fd), filter: t.constants.filterRead,
                                                flags: t.constants.add | t.constants.clear, data: 2)))
        #expect(t.deliver(t.readiness(of: readable, wakeIdent: 0), to: engine, completions: &completions) == false)
        #expect(completions.map(\.userData) == [1] && completions.map(\.result) == [2])
        #expect(completions.map(\.more) == [false])
        #expect(Array(UnsafeRawBufferPointer(start: buffer.base, count: 2)) == Array("hi".utf8))
        completions.removeAll()

        // The peer sends and closes: EV_EOF arrives with data still buffered. The data comes first,
        // then end of stream — the EOF flag never drops bytes.
        engine.submit(Submission(userData: 2, kind: .receive, fd: fd, pointer: buffer.base, length: 16),
                      completions: &completions)
        #expect(completions.isEmpty)
        _ = try pair.first.send(Array("bye".utf8))
        try pair.first.shutdown(.write)
        let eof = Kevent(ident: UInt64(fd), filter: t.constants.filterRead,
                         flags: t.constants.add | t.constants.clear | t.constants.endOfFile, data: 3)
        _ = t.deliver(t.readiness(of: t.decode(t.encode(eof)), wakeIdent: 0), to: engine, completions: &completions)
        #expect(completions.map(\.result) == [3])
        completions.removeAll()
        engine.submit(Submission(userData: 3, kind: .receive, fd: fd, pointer: buffer.base, length: 16),
                      completions: &completions)
        #expect(completions.map(\.userData) == [3] && completions.map(\.result) == [0])  // tried first: EOF
        completions.removeAll()

        // A change that failed (here EBADF, 9 on both platforms) fails what is parked on that
        // filter's side of the descriptor, and only that side.
        let other = try Socket.makePair(kind: .stream)
        let otherFD = other.second.descriptor
        let filler = [UInt8](repeating: 7, count: 64 << 10)
        while (try other.second.send(filler)) != nil {}  // fill the pair until a send would block
        let outgoing = IOBuffer(filler)
        engine.submit(Submission(userData: 4, kind: .receive, fd: otherFD, pointer: buffer.base, length: 16),
                      completions: &completions)
        engine.submit(Submission(userData: 5, kind: .send, fd: otherFD, pointer: outgoing.base, length: outgoing.count),
                      completions: &completions)
        #expect(completions.isEmpty && engine.parkedCount == 2)
        let failedRead = Kevent(ident: UInt64(otherFD), filter: t.constants.filterRead, flags: t.constants.error,
                                data: 9)
        _ = t.deliver(t.readiness(of: t.decode(t.encode(failedRead)), wakeIdent: 0), to: engine,
                      completions: &completions)
        #expect(completions.map(\.userData) == [4] && completions.map(\.result) == [-9])
        #expect(engine.parkedCount == 1, "the parked send is not on the failed filter")
        #expect(engine.descriptors[Int(otherFD)].watched == false, "the next operation to park watches again")
        let failedWrite = Kevent(ident: UInt64(otherFD), filter: t.constants.filterWrite, flags: t.constants.error,
                                 data: 9)
        _ = t.deliver(t.readiness(of: t.decode(t.encode(failedWrite)), wakeIdent: 0), to: engine,
                      completions: &completions)
        #expect(completions.map(\.userData) == [4, 5] && completions.map(\.result) == [-9, -9])
        #expect(engine.parkedCount == 0)

        // The wakeup is reported to the backend, never as a completion.
        completions.removeAll()
        let wake = Kevent(ident: 0, filter: t.constants.filterUser, flags: t.constants.clear,
                          fflags: t.constants.noteTrigger)
        #expect(t.deliver(t.readiness(of: wake, wakeIdent: 0), to: engine, completions: &completions) == true)
        #expect(completions.isEmpty)
    }
}
