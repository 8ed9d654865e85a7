// The platform layer of StrataThreads: the libc import, errno names and messages,
// and the few constants that differ per OS. Everything else in the module is
// written against the imported pthread API.

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#else
#error("StrataThreads: unsupported platform (expected Glibc, Musl or Darwin); add it to Platform.swift")
#endif
#if os(Linux)
import CStrataSys
#endif

/// The symbolic name of an errno value on this platform (`EAGAIN`), or nil if unknown.
///
/// The table is built from the imported constants, so it cannot disagree with the headers.
/// Where two names share a value (`EWOULDBLOCK` = `EAGAIN`, `ENOTSUP` = `EOPNOTSUPP` on
/// Linux), the first listed wins; the tests prove every name against the host's ABI table.
func errnoName(_ code: CInt) -> String? {
    switch code {
    case EPERM: return "EPERM"
    case ENOENT: return "ENOENT"
    case ESRCH: return "ESRCH"
    case EINTR: return "EINTR"
    case EIO: return "EIO"
    case ENXIO: return "ENXIO"
    case E2BIG: return "E2BIG"
    case ENOEXEC: return "ENOEXEC"
    case EBADF: return "EBADF"
    case ECHILD: return "ECHILD"
    case EAGAIN: return "EAGAIN"
    case EWOULDBLOCK: return "EWOULDBLOCK"
    case ENOMEM: return "ENOMEM"
    case EACCES: return "EACCES"
    case EFAULT: return "EFAULT"
    case EBUSY: return "EBUSY"
    case EEXIST: return "EEXIST"
    case EXDEV: return "EXDEV"
    case ENODEV: return "ENODEV"
    case ENOTDIR: return "ENOTDIR"
    case EISDIR: return "EISDIR"
    case EINVAL: return "EINVAL"
    case ENFILE: return "ENFILE"
    case EMFILE: return "EMFILE"
    case ENOTTY: return "ENOTTY"
    case ETXTBSY: return "ETXTBSY"
    case EFBIG: return "EFBIG"
    case ENOSPC: return "ENOSPC"
    case ESPIPE: return "ESPIPE"
    case EROFS: return "EROFS"
    case EMLINK: return "EMLINK"
    case EPIPE: return "EPIPE"
    case EDOM: return "EDOM"
    case ERANGE: return "ERANGE"
    case EDEADLK: return "EDEADLK"
    case ENAMETOOLONG: return "ENAMETOOLONG"
    case ENOLCK: return "ENOLCK"
    case ENOSYS: return "ENOSYS"
    case ENOTEMPTY: return "ENOTEMPTY"
    case ELOOP: return "ELOOP"
    case ENOMSG: return "ENOMSG"
    case EIDRM: return "EIDRM"
    case EPROTO: return "EPROTO"
    case EBADMSG: return "EBADMSG"
    case EOVERFLOW: return "EOVERFLOW"
    case EILSEQ: return "EILSEQ"
    case ENOTSOCK: return "ENOTSOCK"
    case EDESTADDRREQ: return "EDESTADDRREQ"
    case EMSGSIZE: return "EMSGSIZE"
    case EPROTOTYPE: return "EPROTOTYPE"
    case ENOPROTOOPT: return "ENOPROTOOPT"
    case EPROTONOSUPPORT: return "EPROTONOSUPPORT"
    case ESOCKTNOSUPPORT: return "ESOCKTNOSUPPORT"
    case EOPNOTSUPP: return "EOPNOTSUPP"
    case ENOTSUP: return "ENOTSUP"
    case EPFNOSUPPORT: return "EPFNOSUPPORT"
    case EAFNOSUPPORT: return "EAFNOSUPPORT"
    case EADDRINUSE: return "EADDRINUSE"
    case EADDRNOTAVAIL: return "EADDRNOTAVAIL"
    case ENETDOWN: return "ENETDOWN"
    case ENETUNREACH: return "ENETUNREACH"
    case ENETRESET: return "ENETRESET"
    case ECONNABORTED: return "ECONNABORTED"
    case ECONNRESET: return "ECONNRESET"
    case ENOBUFS: return "ENOBUFS"
    case EISCONN: return "EISCONN"
    case ENOTCONN: return "ENOTCONN"
    case ESHUTDOWN: return "ESHUTDOWN"
    case ETOOMANYREFS: return "ETOOMANYREFS"
    case ETIMEDOUT: return "ETIMEDOUT"
    case ECONNREFUSED: return "ECONNREFUSED"
    case EHOSTDOWN: return "EHOSTDOWN"
    case EHOSTUNREACH: return "EHOSTUNREACH"
    case EALREADY: return "EALREADY"
    case EINPROGRESS: return "EINPROGRESS"
    case ESTALE: return "ESTALE"
    case EDQUOT: return "EDQUOT"
    case ECANCELED: return "ECANCELED"
    case EOWNERDEAD: return "EOWNERDEAD"
    case ENOTRECOVERABLE: return "ENOTRECOVERABLE"
    default: break
    }
    #if os(Linux)
    switch code {
    case EDEADLOCK: return "EDEADLOCK"
    case ENODATA: return "ENODATA"
    case ETIME: return "ETIME"
    case EBADFD: return "EBADFD"
    default: return nil
    }
    #elseif canImport(Darwin)
    switch code {
    case ENODATA: return "ENODATA"
    case ETIME: return "ETIME"
    default: return nil
    }
    #else
    return nil
    #endif
}

/// The C library's message for an errno value (`Resource temporarily unavailable`).
///
/// Uses the XSI `strerror_r`, which every supported libc exports under that name when
/// `_GNU_SOURCE` is not defined (as in Swift's libc module): no shared static buffer.
func errnoMessage(_ code: CInt) -> String {
    // 256 bytes holds every message glibc, musl, Darwin and FreeBSD produce.
    withUnsafeTemporaryAllocation(of: CChar.self, capacity: 256) { buffer in
        guard let base = buffer.baseAddress else { return "errno \(code)" }
        base.initialize(to: 0)
        let rc = strerror_r(code, base, buffer.count)
        if rc != 0 && base.pointee == 0 { return "unknown error \(code)" }
        buffer[buffer.count - 1] = 0
        return String(cString: base)
    }
}

/// `EAGAIN (11): Resource temporarily unavailable`: how every error of this module names an errno.
func describeErrno(_ code: CInt) -> String {
    "\(errnoName(code) ?? "errno") (\(code)): \(errnoMessage(code))"
}

/// Stops the process because a pthread call that cannot fail in a correct program failed.
///
/// Used for lock, unlock, wait and destroy: an error there means the program broke a
/// locking rule (unlocking a mutex it does not own, relocking it, destroying it while
/// held), and continuing would corrupt the state the lock protects.
@usableFromInline
func pthreadFailure(_ call: StaticString, _ code: CInt, file: StaticString = #fileID, line: UInt = #line) -> Never {
    fatalError("\(call) failed: \(describeErrno(code))", file: file, line: line)
}

/// Platform facts that have no importable C constant.
enum Platform {
    /// The longest thread name the kernel keeps, in bytes, without the terminating NUL.
    ///
    /// Linux: `TASK_COMM_LEN` (16) less the NUL; the kernel header constant is not
    /// exported to user space. Darwin: `MAXTHREADNAMESIZE` (64) less the NUL, from the
    /// private `sys/proc_info.h`. FreeBSD: `MAXCOMLEN` (19) from `sys/param.h`.
    static var maximumThreadNameBytes: Int {
        #if os(Linux)
        return 15
        #elseif canImport(Darwin)
        return 63
        #elseif os(FreeBSD)
        return 19
        #else
        return 15
        #endif
    }

    #if os(Linux)
    /// `CPU_SETSIZE`: CPU indices in an affinity set are below it.
    static var cpuSetSize: Int { Int(strata_cpu_setsize()) }
    #endif

    /// The size of a memory page (`sysconf(_SC_PAGESIZE)`).
    static let pageSize: Int = {
        let size = sysconf(CInt(_SC_PAGESIZE))
        return size > 0 ? Int(size) : 4096
    }()
}
