// Live kernel probes for `strata-abi audit`: they check that the running
// kernel behaves as the ABI table says, not just that the headers agree.
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import CStrataSys
import _StrataABIKit

/// The outcome of one live probe.
struct ProbeResult: Codable {
    enum Status: String, Codable { case ok, mismatch, unavailable, info }
    var name: String
    var status: Status
    var detail: String
}

func errnoText(_ e: Int32 = errno) -> String {
    "\(strerror(e).map { String(validatingCString: $0) ?? "?" } ?? "?") (errno \(e))"
}

enum KernelProbes {
    static func all(table: ABITable) -> [ProbeResult] {
        var r: [ProbeResult] = []
        r.append(sockNonblock(table))
        #if os(Linux)
        r.append(epollRoundTrip(table))
        r.append(contentsOf: ioUring(table))
        #endif
        r.append(rlimitNofile())
        r.append(somaxconn(table))
        return r
    }

    /// SOCK_NONBLOCK | SOCK_CLOEXEC at socket() must show up as O_NONBLOCK and FD_CLOEXEC.
    static func sockNonblock(_ table: ABITable) -> ProbeResult {
        let name = "SOCK_NONBLOCK sets O_NONBLOCK"
        #if os(Linux) || os(FreeBSD)
        let type = Int32(abiValue(SOCK_STREAM)) | Int32(abiValue(SOCK_NONBLOCK)) | Int32(abiValue(SOCK_CLOEXEC))
        let fd = socket(AF_INET, type, 0)
        guard fd >= 0 else { return ProbeResult(name: name, status: .mismatch, detail: "socket() failed: \(errnoText())") }
        defer { close(fd) }
        let fl = fcntl(fd, F_GETFL)
        let fdfl = fcntl(fd, F_GETFD)
        let wantNonblock = (table.constants["O_NONBLOCK"] ?? nil) ?? -1
        let ok = fl & O_NONBLOCK != 0 && fdfl & FD_CLOEXEC != 0 && Int64(O_NONBLOCK) == wantNonblock
        return ProbeResult(name: name, status: ok ? .ok : .mismatch,
                           detail: "F_GETFL = 0x\(String(fl, radix: 16)) (O_NONBLOCK 0x\(String(O_NONBLOCK, radix: 16)), table 0x\(String(wantNonblock, radix: 16))), FD_CLOEXEC \(fdfl & FD_CLOEXEC != 0 ? "set" : "NOT set")")
        #else
        return ProbeResult(name: name, status: .info, detail: "this OS has no SOCK_NONBLOCK; Strata uses fcntl")
        #endif
    }

    #if os(Linux)
    /// An epoll_event's data must come back unchanged (the packed 12-byte layout on x86_64).
    static func epollRoundTrip(_ table: ABITable) -> ProbeResult {
        let name = "epoll data round trip"
        let ep = epoll_create1(Int32(abiValue(EPOLL_CLOEXEC)))
        guard ep >= 0 else { return ProbeResult(name: name, status: .unavailable, detail: "epoll_create1: \(errnoText())") }
        defer { close(ep) }
        let efd = eventfd(0, Int32(abiValue(EFD_NONBLOCK)) | Int32(abiValue(EFD_CLOEXEC)))
        guard efd >= 0 else { return ProbeResult(name: name, status: .unavailable, detail: "eventfd: \(errnoText())") }
        defer { close(efd) }
        let marker: UInt64 = 0xDEAD_BEEF_CAFE_F00D
        var ev = epoll_event()
        ev.events = UInt32(abiValue(EPOLLIN)) | UInt32(truncatingIfNeeded: abiValue(EPOLLET))
        ev.data.u64 = marker
        guard epoll_ctl(ep, EPOLL_CTL_ADD, efd, &ev) == 0 else {
            return ProbeResult(name: name, status: .mismatch, detail: "epoll_ctl: \(errnoText())")
        }
        var one: UInt64 = 1
        _ = write(efd, &one, 8)
        var out = [epoll_event](repeating: epoll_event(), count: 2)
        let n = epoll_wait(ep, &out, 2, 1000)
        let tableSize = ((table.types["struct epoll_event"] ?? nil)?.size) ?? -1
        guard n == 1 else {
            return ProbeResult(name: name, status: .mismatch, detail: "epoll_wait returned \(n) (\(errnoText()))")
        }
        let ok = out[0].data.u64 == marker && out[0].events & UInt32(abiValue(EPOLLIN)) != 0
            && MemoryLayout<epoll_event>.size == tableSize
        return ProbeResult(name: name, status: ok ? .ok : .mismatch,
                           detail: "data 0x\(String(out[0].data.u64, radix: 16)), events 0x\(String(out[0].events, radix: 16)), sizeof \(MemoryLayout<epoll_event>.size) (table \(tableSize))")
    }

    /// io_uring: can a ring be set up (with the flags Events wants), and which opcodes exist.
    static func ioUring(_ table: ABITable) -> [ProbeResult] {
        var results: [ProbeResult] = []
        var disabled = "absent (kernel without the sysctl)"
        if let f = fopen("/proc/sys/kernel/io_uring_disabled", "r") {
            var v: Int32 = 0
            if withUnsafeMutablePointer(to: &v, { p in fscanf_int(f, p) }) { disabled = "\(v)" }
            fclose(f)
        }
        results.append(ProbeResult(name: "io_uring_disabled", status: .info, detail: disabled))

        let single = UInt32(abiValue(IORING_SETUP_SINGLE_ISSUER)) | UInt32(abiValue(IORING_SETUP_DEFER_TASKRUN))
        let coop = UInt32(abiValue(IORING_SETUP_COOP_TASKRUN))
        var chosen = ""
        var fd: Int32 = -1
        var params = io_uring_params()
        for (label, flags) in [("SINGLE_ISSUER|DEFER_TASKRUN", single), ("COOP_TASKRUN", coop), ("no flags", UInt32(0))] {
            params = io_uring_params()
            params.flags = flags
            fd = strata_io_uring_setup(8, &params)
            if fd >= 0 { chosen = label; break }
            if errno != EINVAL { break }
        }
        guard fd >= 0 else {
            let e = errno
            let why = e == EPERM ? "EPERM: io_uring_disabled=\(disabled) or a seccomp policy forbids it" : errnoText(e)
            results.append(ProbeResult(name: "io_uring setup", status: .unavailable, detail: why))
            return results
        }
        defer { close(fd) }
        let feats = params.features
        var featNames: [String] = []
        for (n, v) in [("SINGLE_MMAP", IORING_FEAT_SINGLE_MMAP), ("NODROP", IORING_FEAT_NODROP),
                       ("SUBMIT_STABLE", IORING_FEAT_SUBMIT_STABLE), ("FAST_POLL", IORING_FEAT_FAST_POLL),
                       ("EXT_ARG", IORING_FEAT_EXT_ARG), ("NATIVE_WORKERS", IORING_FEAT_NATIVE_WORKERS),
                       ("CQE_SKIP", IORING_FEAT_CQE_SKIP), ("LINKED_FILE", IORING_FEAT_LINKED_FILE)]
        where feats & UInt32(abiValue(v)) != 0 { featNames.append(n) }
        results.append(ProbeResult(name: "io_uring setup", status: .ok,
                                   detail: "flags \(chosen); sq \(params.sq_entries) cq \(params.cq_entries); features \(featNames.joined(separator: ","))"))

        // IORING_REGISTER_PROBE: a 16-byte header, then 8-byte io_uring_probe_op entries.
        let ops = 256
        let bytes = UnsafeMutableRawPointer.allocate(byteCount: 16 + ops * 8, alignment: 8)
        defer { bytes.deallocate() }
        bytes.initializeMemory(as: UInt8.self, repeating: 0, count: 16 + ops * 8)
        let rc = strata_io_uring_register(fd, UInt32(abiValue(IORING_REGISTER_PROBE)), bytes, UInt32(ops))
        guard rc >= 0 else {
            results.append(ProbeResult(name: "io_uring opcodes", status: .unavailable, detail: "IORING_REGISTER_PROBE: \(errnoText())"))
            return results
        }
        let lastOp = Int(bytes.load(as: UInt8.self))
        let wanted: [(String, Int64)] = [
            "IORING_OP_ACCEPT", "IORING_OP_RECV", "IORING_OP_SEND", "IORING_OP_WRITEV", "IORING_OP_CONNECT",
            "IORING_OP_CLOSE", "IORING_OP_TIMEOUT", "IORING_OP_ASYNC_CANCEL", "IORING_OP_PROVIDE_BUFFERS",
            "IORING_OP_SPLICE", "IORING_OP_SEND_ZC", "IORING_OP_SHUTDOWN",
        ].compactMap { n in (table.constants[n] ?? nil).map { (n, $0) } }
        var supported: [String] = [], missing: [String] = []
        for (n, op) in wanted {
            let entry = 16 + Int(op) * 8
            let flags = op <= lastOp ? bytes.load(fromByteOffset: entry + 2, as: UInt16.self) : 0
            if flags & 1 != 0 { supported.append(String(n.dropFirst(10))) } else { missing.append(String(n.dropFirst(10))) }
        }
        results.append(ProbeResult(name: "io_uring opcodes", status: missing.isEmpty ? .ok : .info,
                                   detail: "last_op \(lastOp); supported \(supported.joined(separator: ","))"
                                    + (missing.isEmpty ? "" : "; missing \(missing.joined(separator: ","))")))
        return results
    }
    #endif

    static func rlimitNofile() -> ProbeResult {
        var rl = rlimit()
        #if canImport(Glibc)
        let resource = __rlimit_resource_t(UInt32(RLIMIT_NOFILE.rawValue))
        #else
        let resource = RLIMIT_NOFILE
        #endif
        guard getrlimit(resource, &rl) == 0 else {
            return ProbeResult(name: "RLIMIT_NOFILE", status: .mismatch, detail: "getrlimit: \(errnoText())")
        }
        #if os(Linux)
        let infinity = rlim_t.max  // RLIM_INFINITY is ((rlim_t)-1), which the importer cannot evaluate
        #else
        let infinity = RLIM_INFINITY
        #endif
        let soft = rl.rlim_cur == infinity ? "unlimited" : "\(rl.rlim_cur)"
        let hard = rl.rlim_max == infinity ? "unlimited" : "\(rl.rlim_max)"
        let hint = rl.rlim_cur < 4096 ? " — low for a server: raise with `ulimit -n` (up to the hard limit)" : ""
        return ProbeResult(name: "RLIMIT_NOFILE", status: .info, detail: "soft \(soft), hard \(hard)\(hint)")
    }

    static func somaxconn(_ table: ABITable) -> ProbeResult {
        let constant = (table.constants["SOMAXCONN"] ?? nil).map { "\($0)" } ?? "undefined"
        #if os(Linux)
        if let f = fopen("/proc/sys/net/core/somaxconn", "r") {
            defer { fclose(f) }
            var v: Int32 = 0
            if withUnsafeMutablePointer(to: &v, { p in fscanf_int(f, p) }) {
                return ProbeResult(name: "somaxconn", status: .info,
                                   detail: "kernel net.core.somaxconn \(v), header SOMAXCONN \(constant); listen backlogs above \(v) are silently capped")
            }
        }
        #endif
        return ProbeResult(name: "somaxconn", status: .info, detail: "header SOMAXCONN \(constant)")
    }
}

/// Reads one decimal integer from a stdio stream (fscanf is variadic and not importable).
func fscanf_int(_ f: UnsafeMutablePointer<FILE>, _ out: UnsafeMutablePointer<Int32>) -> Bool {
    var buf = [CChar](repeating: 0, count: 64)
    guard fgets(&buf, Int32(buf.count), f) != nil else { return false }
    let s = String(decoding: buf.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self).trimmingWhitespace
    guard let v = Int32(s) else { return false }
    out.pointee = v
    return true
}

extension String {
    var trimmingWhitespace: String {
        var s = Substring(self)
        while let c = s.first, c.isWhitespace { s.removeFirst() }
        while let c = s.last, c.isWhitespace { s.removeLast() }
        return String(s)
    }
}
