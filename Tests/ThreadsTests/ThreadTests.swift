#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
@testable import StrataThreads
import Testing

@Suite("Thread", .timeLimit(.minutes(2)))
struct ThreadTests {
    @Test("spawn runs the body on a new thread; join waits for it")
    func spawnAndJoin() throws {
        let ran = Unprotected(false)
        let bodyID = Unprotected(ThreadID(rawValue: 0))
        let thread = try Thread.spawn(name: "strata-spawn") {
            bodyID.value = Thread.currentID
            ran.value = true
        }
        let id = thread.id
        try thread.join()
        #expect(ran.value)
        #expect(bodyID.value == id, "Thread.id must be the id the thread itself sees")
        #expect(id != Thread.currentID)
        #expect(id.rawValue != 0)
    }

    @Test("the requested name is applied and visible to the thread itself")
    func nameApplied() throws {
        let seen = Unprotected("")
        let thread = try Thread.spawn(name: "strata-named") {
            seen.value = (try? Thread.currentName()) ?? "<error>"
        }
        #expect(thread.name == "strata-named")
        try thread.join()
        #expect(seen.value == "strata-named")
    }

    #if os(Linux)
    @Test("Linux keeps 15 bytes: longer names are truncated, and the applied name says so")
    func longNameTruncated() throws {
        #expect(Thread.maximumNameBytes == 15)
        let seen = Unprotected("")
        let thread = try Thread.spawn(name: "strata-very-long-thread-name") {
            seen.value = (try? Thread.currentName()) ?? "<error>"
        }
        #expect(thread.name == "strata-very-lon")
        try thread.join()
        #expect(seen.value == "strata-very-lon")
    }
    #endif

    @Test("truncation never splits a UTF-8 sequence")
    func truncationAtScalarBoundary() {
        // "é" is two bytes: nine of them are 18 bytes.
        let requested = String(repeating: "é", count: 9)
        let applied = Thread.appliedName(for: requested)
        #expect(applied.utf8.count <= Thread.maximumNameBytes)
        #expect(requested.hasPrefix(applied))
        #expect(applied.unicodeScalars.allSatisfy { $0 == "é" })
        #expect(Thread.truncate("ab€", toBytes: 4) == "ab")       // € is 3 bytes
        #expect(Thread.truncate("ab€", toBytes: 5) == "ab€")
        #expect(Thread.truncate("🧵🧵", toBytes: 7) == "🧵")       // 🧵 is 4 bytes
        #expect(Thread.truncate("short", toBytes: 15) == "short")
        #expect(Thread.appliedName(for: "fits") == "fits")
    }

    @Test("a name containing NUL is rejected before a thread starts")
    func nameWithNUL() {
        let ran = Unprotected(false)
        do throws(ThreadsError) {
            let thread = try Thread.spawn(name: "bad\u{0}name") { ran.value = true }
            try thread.join()
            Issue.record("spawn accepted a name with NUL")
        } catch {
            #expect(error.code == .invalidArgument)
        }
        #expect(ran.value == false)
    }

    @Test("a stack below the platform minimum is refused with the errno name")
    func stackTooSmall() {
        do throws(ThreadsError) {
            let thread = try Thread.spawn(name: "tiny", stackSize: 1) {}
            try thread.join()
            Issue.record("a 1-byte stack was accepted")
        } catch {
            #expect(error.code == .systemCallFailed)
            #expect(error.call == "pthread_attr_setstacksize")
            #expect(error.errnoCode == EINVAL)
            #expect(error.errnoName == "EINVAL")
            #expect(error.description.contains("pthread_attr_setstacksize: EINVAL (\(EINVAL)): "))
        }
    }

    @Test("a non-positive stack size is an invalid argument", arguments: [0, -4096])
    func stackNotPositive(size: Int) {
        #expect(throws: ThreadsError.self) {
            let thread = try Thread.spawn(name: "bad-stack", stackSize: size) {}
            try thread.join()
        }
    }

    #if os(Linux) && canImport(Glibc)
    @Test("the requested stack size is the size of the thread's stack mapping", arguments: [256, 1024, 1500])
    func stackSizeApplied(kibibytes: Int) throws {
        let requested = kibibytes * 1024
        let expected = (requested + Platform.pageSize - 1) / Platform.pageSize * Platform.pageSize
        let mapping = Unprotected<Int?>(nil)
        let thread = try Thread.spawn(name: "stack", stackSize: requested) {
            // glibc keeps the thread descriptor that pthread_self() points to at the top of
            // the stack block it maps for the thread. (The address of a local would not do:
            // AddressSanitizer may move locals to a "fake stack" elsewhere.)
            mapping.value = mappingSize(containing: UInt(pthread_self()))
        }
        try thread.join()
        let size = try #require(mapping.value, "no mapping in /proc/self/maps holds the thread's stack")
        // glibc maps the requested size and turns a guard page of it into PROT_NONE, which
        // /proc/self/maps lists separately; it may instead reuse a cached stack of up to four
        // times the request. The default (8 MiB) is outside that range for these sizes.
        #expect(size >= expected - 64 * 1024)
        #expect(size <= 4 * expected)
    }
    #endif

    #if os(Linux)
    @Test("affinity pins the new thread to the requested CPU")
    func affinityApplied() throws {
        let allowed = try Thread.currentAffinity()
        let cpu = try #require(allowed.min())
        let seen = Unprotected<Set<Int>>([])
        let thread = try Thread.spawn(name: "pinned", affinity: [cpu]) {
            seen.value = (try? Thread.currentAffinity()) ?? []
        }
        try thread.join()
        #expect(seen.value == [cpu])
        #expect(try Thread.currentAffinity() == allowed, "the creator's affinity must not change")
    }

    @Test("out-of-range CPU sets are invalid arguments", arguments: [[], [-1], [1_000_000]] as [Set<Int>])
    func affinityOutOfRange(cpus: Set<Int>) {
        do throws(ThreadsError) {
            let thread = try Thread.spawn(name: "bad-cpus", affinity: cpus) {}
            try thread.join()
            Issue.record("affinity \(cpus) was accepted")
        } catch {
            #expect(error.code == .invalidArgument)
        }
    }

    @Test("a CPU the process may not use fails the spawn with pthread_setaffinity_np's EINVAL; the body never runs")
    func affinityNotAllowed() throws {
        let allowed = try Thread.currentAffinity()
        let limit = Platform.cpuSetSize
        let cpu = try #require((0..<limit).reversed().first { !allowed.contains($0) })
        let ran = Unprotected(false)
        do throws(ThreadsError) {
            let thread = try Thread.spawn(name: "offline", affinity: [cpu]) { ran.value = true }
            try thread.join()
            Issue.record("CPU \(cpu) was accepted")
        } catch {
            #expect(error.code == .systemCallFailed)
            #expect(error.call == "pthread_setaffinity_np")
            #expect(error.errnoName == "EINVAL")
            #expect(error.message.contains("CPU"))
        }
        #expect(ran.value == false)
    }
    #else
    @Test("affinity is refused as unsupported outside Linux")
    func affinityUnsupported() {
        do throws(ThreadsError) {
            let thread = try Thread.spawn(name: "pinned", affinity: [0]) {}
            try thread.join()
            Issue.record("affinity was accepted")
        } catch {
            #expect(error.code == .unsupported)
        }
    }
    #endif

    @Test("dropping the handle detaches the thread, which still runs to the end")
    func dropDetaches() throws {
        let release = Gate()
        let finished = Gate()
        do {
            let thread = try Thread.spawn(name: "detached") {
                #expect(release.wait())
                finished.open()
            }
            _ = consume thread
        }
        release.open()
        #expect(finished.wait())
    }

    @Test("a thread joining itself gets EDEADLK, and is detached instead")
    func joinSelf() throws {
        final class Slot: @unchecked Sendable {
            // @unchecked Sendable: written before `handed` opens, read after.
            var thread: Thread?
            var error: ThreadsError?
        }
        let slot = Slot()
        let handed = Gate()
        let done = Gate()
        let thread = try Thread.spawn(name: "self-join") {
            #expect(handed.wait())
            if let own = slot.thread.take() {
                do throws(ThreadsError) { try own.join() } catch { slot.error = error }
            }
            done.open()
        }
        slot.thread = consume thread
        handed.open()
        #expect(done.wait())
        #expect(slot.error?.call == "pthread_join")
        #expect(slot.error?.errnoName == "EDEADLK")
    }

    @Test("thread ids differ between live threads")
    func distinctIDs() throws {
        let ids = LockedValue(Set<ThreadID>())
        try runOnThreads(4, name: "ids") { _ in
            _ = ids.withLock { $0.insert(Thread.currentID) }
        }
        #expect(ids.withLock { $0.count } == 4)
        #expect(!ids.withLock { $0.contains(Thread.currentID) })
    }
}

#if os(Linux) && canImport(Glibc)
/// The size of the readable mapping in /proc/self/maps that contains `address`, or nil.
func mappingSize(containing address: UInt) -> Int? {
    guard let file = fopen("/proc/self/maps", "r") else { return nil }
    defer { fclose(file) }
    var line = [CChar](repeating: 0, count: 4096)
    // Bounded: /proc/self/maps of a test process has a few thousand lines at most.
    for _ in 0..<1_000_000 {
        guard fgets(&line, CInt(line.count), file) != nil else { return nil }
        let text = line.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
        guard let range = text.split(separator: " ").first else { continue }
        let bounds = range.split(separator: "-")
        guard bounds.count == 2, let low = UInt(bounds[0], radix: 16), let high = UInt(bounds[1], radix: 16) else {
            continue
        }
        if low <= address && address < high { return Int(high - low) }
    }
    return nil
}
#endif
