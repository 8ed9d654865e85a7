// Platform glue: the C library import chain and conversions of imported constants to CInt.
//
// The Clang importer gives the same C constant different Swift types per libc: glibc declares
// SOCK_STREAM in an enum (`__socket_type`), MSG_PEEK and IPPROTO_TCP in anonymous enums (imported as
// `Int`), while Darwin and musl use plain macros (imported as `Int32`). `cInt(_:)` turns any of them
// into the CInt that the system calls take, so that the rest of the module can name every constant
// once and never carry a literal.

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#else
#error("StrataSockets supports Linux (glibc, musl), Darwin and FreeBSD: add this platform's import chain")
#endif

/// An imported integer constant as a C `int`.
///
/// Traps when the value does not fit, which would mean the importer and the ABI table disagree.
@inline(__always)
func cInt<T: BinaryInteger>(_ value: T) -> CInt {
    CInt(value)
}

#if canImport(Glibc)
/// glibc's `SOCK_*` socket types (an enum) as a C `int`.
@inline(__always)
func cInt(_ value: __socket_type) -> CInt {
    CInt(bitPattern: value.rawValue)
}
#endif

/// The size of `T` as a `socklen_t`.
@inline(__always)
func socklen<T>(of type: T.Type) -> socklen_t {
    socklen_t(MemoryLayout<T>.size)
}

/// The C `struct linger`, under a name that `Socket.Option.linger` does not shadow.
typealias CLinger = linger
