#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

extension Socket {
    /// A typed socket option: its level, its C name and number, and how its value is encoded.
    ///
    /// Options are static members, so calls read as phrases and the value's type is checked:
    ///
    /// ```swift
    /// try socket.setOption(.noDelay, to: true)
    /// try socket.setOption(.linger, to: .seconds(0))     // close sends a reset
    /// let size = try socket.option(.receiveBufferSize)
    /// ```
    ///
    /// For an option Strata does not name, build one with ``boolean(level:name:description:)`` or
    /// ``integer(level:name:description:)``.
    public struct Option<Value>: Sendable, CustomStringConvertible {
        /// The protocol level, such as `SOL_SOCKET` or `IPPROTO_TCP`.
        public let level: CInt

        /// The option's number, such as `SO_REUSEADDR`.
        public let name: CInt

        /// The option's C name, such as `SO_REUSEADDR`, used in error messages.
        public let cName: StaticString

        let layout: OptionLayout
        let encode: @Sendable (Value) -> OptionValue
        let decode: @Sendable (OptionValue) -> Value

        init(
            _ level: CInt,
            _ name: CInt,
            _ cName: StaticString,
            _ layout: OptionLayout,
            encode: @escaping @Sendable (Value) -> OptionValue,
            decode: @escaping @Sendable (OptionValue) -> Value
        ) {
            self.level = level
            self.name = name
            self.cName = cName
            self.layout = layout
            self.encode = encode
            self.decode = decode
        }

        /// The option's C name.
        public var description: String {
            cName.description
        }
    }

    /// Sets a socket option.
    ///
    /// - Parameters:
    ///   - option: The option, such as ``Option/reuseAddress``.
    ///   - value: The value to set.
    /// - Throws: ``SocketError``, for example ``SocketError/Code/unsupported`` when the option
    ///   does not apply to this socket's protocol.
    ///
    /// The corresponding C function is `setsockopt`.
    public func setOption<Value>(_ option: Option<Value>, to value: Value) throws(SocketError) {
        let encoded = option.encode(value)
        let result: Result<Void, Errno>
        switch encoded {
        case .int(var number):
            result = withUnsafeBytes(of: &number) { bytes in
                sysSetsockopt(descriptor, option.level, option.name, bytes.baseAddress!, socklen_t(bytes.count))
            }
        case .linger(var value):
            result = withUnsafeBytes(of: &value) { bytes in
                sysSetsockopt(descriptor, option.level, option.name, bytes.baseAddress!, socklen_t(bytes.count))
            }
        case .time(var value):
            result = withUnsafeBytes(of: &value) { bytes in
                sysSetsockopt(descriptor, option.level, option.name, bytes.baseAddress!, socklen_t(bytes.count))
            }
        }
        if case .failure(let errno) = result {
            throw SocketError("setsockopt", errno: errno, descriptor: descriptor, option: option.cName)
        }
    }

    /// Reads a socket option.
    ///
    /// - Parameter option: The option, such as ``Option/receiveBufferSize``.
    /// - Returns: The option's value.
    /// - Throws: ``SocketError``.
    ///
    /// The corresponding C function is `getsockopt`.
    public func option<Value>(_ option: Option<Value>) throws(SocketError) -> Value {
        let result: Result<OptionValue, Errno>
        switch option.layout {
        case .int:
            var number: CInt = 0
            result = read(option, into: &number).map { .int(number) }
        case .linger:
            var value = CLinger()
            result = read(option, into: &value).map { .linger(value) }
        case .time:
            var value = timeval()
            result = read(option, into: &value).map { .time(value) }
        }
        switch result {
        case .success(let value): return option.decode(value)
        case .failure(let errno):
            throw SocketError("getsockopt", errno: errno, descriptor: descriptor, option: option.cName)
        }
    }

    private func read<Value, Raw>(_ option: Option<Value>, into value: inout Raw) -> Result<Void, Errno> {
        var length = socklen(of: Raw.self)
        return withUnsafeMutableBytes(of: &value) { bytes in
            sysGetsockopt(descriptor, option.level, option.name, bytes.baseAddress!, &length)
        }
    }

    /// Reads and clears the socket's pending error.
    ///
    /// A failed nonblocking connect, or an asynchronous error such as an ICMP message for a
    /// datagram, is stored on the socket until read. ``finishConnect()`` calls this for you.
    ///
    /// - Returns: The pending error, or `nil` when there is none.
    /// - Throws: ``SocketError`` when the option cannot be read.
    ///
    /// The corresponding C function is `getsockopt` (`SOL_SOCKET`, `SO_ERROR`).
    public func soError() throws(SocketError) -> Errno? {
        let value = try option(.integer(level: SOL_SOCKET, name: SO_ERROR, description: "SO_ERROR"))
        return value == 0 ? nil : Errno(rawValue: CInt(truncatingIfNeeded: value))
    }
}

/// How an option's value is laid out in memory for setsockopt/getsockopt.
enum OptionLayout: Sendable {
    case int, linger, time
}

/// An option's value in its C form.
enum OptionValue: @unchecked Sendable {
    // @unchecked: `linger` and `timeval` are plain C structs of integers.
    case int(CInt)
    case linger(CLinger)
    case time(timeval)
}

// MARK: - Conversions

/// Whole seconds for a duration, rounded up (so 1.5 s lingers 2 s rather than 1 s), clamped to CInt.
private func wholeSeconds(_ duration: Duration) -> CInt {
    precondition(duration >= .zero, "StrataSockets: negative duration \(duration) for a socket option")
    let (seconds, attoseconds) = duration.components
    let rounded = seconds + (attoseconds > 0 ? 1 : 0)
    return CInt(clamping: rounded)
}

/// A `timeval` for a duration, rounded up to the microsecond.
private func timeValue(_ duration: Duration) -> timeval {
    precondition(duration >= .zero, "StrataSockets: negative duration \(duration) for a socket option")
    let (seconds, attoseconds) = duration.components
    let attosecondsPerMicrosecond: Int64 = 1_000_000_000_000
    var wholeSeconds = seconds
    var microseconds = (attoseconds + attosecondsPerMicrosecond - 1) / attosecondsPerMicrosecond
    if microseconds == 1_000_000 {
        wholeSeconds += 1
        microseconds = 0
    }
    return timeval(tv_sec: numericCast(wholeSeconds), tv_usec: numericCast(microseconds))
}

private func duration(of value: timeval) -> Duration {
    .seconds(Int64(value.tv_sec)) + .microseconds(Int64(value.tv_usec))
}

// MARK: - Option constructors

extension Socket.Option where Value == Bool {
    /// A boolean option (an `int` that is 0 or 1) Strata does not name.
    ///
    /// - Parameters:
    ///   - level: The protocol level, such as `SOL_SOCKET`.
    ///   - name: The option's number.
    ///   - description: The option's C name, for error messages.
    /// - Returns: The option.
    public static func boolean(level: CInt, name: CInt, description: StaticString) -> Socket.Option<Bool> {
        Socket.Option(level, name, description, .int, encode: { .int($0 ? 1 : 0) }, decode: {
            if case .int(let value) = $0 { return value != 0 }
            return false
        })
    }

    /// Allow binding to an address that old connections still hold in TIME_WAIT.
    ///
    /// Set it on servers before ``Socket/bind(to:)`` so they can restart at once. It does not let
    /// two servers listen on one port (that is ``reusePort``).
    ///
    /// The corresponding C option is `SO_REUSEADDR` (level `SOL_SOCKET`).
    public static var reuseAddress: Socket.Option<Bool> {
        .boolean(level: SOL_SOCKET, name: SO_REUSEADDR, description: "SO_REUSEADDR")
    }

    /// Allow several sockets to bind the same address and port (Linux balances connections
    /// across listeners that all set it).
    ///
    /// The corresponding C option is `SO_REUSEPORT` (level `SOL_SOCKET`).
    public static var reusePort: Socket.Option<Bool> {
        .boolean(level: SOL_SOCKET, name: SO_REUSEPORT, description: "SO_REUSEPORT")
    }

    /// Send keep-alive probes on an idle connection, to detect a peer that vanished.
    ///
    /// Tune with ``Socket/Option/keepAliveIdle``, ``Socket/Option/keepAliveInterval`` and ``Socket/Option/keepAliveCount``.
    ///
    /// The corresponding C option is `SO_KEEPALIVE` (level `SOL_SOCKET`).
    public static var keepAlive: Socket.Option<Bool> {
        .boolean(level: SOL_SOCKET, name: SO_KEEPALIVE, description: "SO_KEEPALIVE")
    }

    /// Allow sending datagrams to broadcast addresses.
    ///
    /// The corresponding C option is `SO_BROADCAST` (level `SOL_SOCKET`).
    public static var broadcast: Socket.Option<Bool> {
        .boolean(level: SOL_SOCKET, name: SO_BROADCAST, description: "SO_BROADCAST")
    }

    /// Send small segments at once instead of waiting to coalesce them (disable Nagle's algorithm).
    ///
    /// The corresponding C option is `TCP_NODELAY` (level `IPPROTO_TCP`).
    public static var noDelay: Socket.Option<Bool> {
        .boolean(level: cInt(IPPROTO_TCP), name: TCP_NODELAY, description: "TCP_NODELAY")
    }

    /// Restrict an IPv6 socket to IPv6; when false, it also serves IPv4 through IPv4-mapped
    /// addresses. Set it before binding.
    ///
    /// The corresponding C option is `IPV6_V6ONLY` (level `IPPROTO_IPV6`).
    public static var v6Only: Socket.Option<Bool> {
        .boolean(level: cInt(IPPROTO_IPV6), name: IPV6_V6ONLY, description: "IPV6_V6ONLY")
    }

    #if canImport(Darwin)
    /// Darwin: report EPIPE instead of raising SIGPIPE. Strata sets it on every socket it creates.
    ///
    /// The corresponding C option is `SO_NOSIGPIPE` (level `SOL_SOCKET`).
    public static var noSignalPipe: Socket.Option<Bool> {
        .boolean(level: SOL_SOCKET, name: SO_NOSIGPIPE, description: "SO_NOSIGPIPE")
    }
    #endif
}

extension Socket.Option where Value == Int {
    /// An integer option (an `int`) Strata does not name.
    ///
    /// - Parameters:
    ///   - level: The protocol level, such as `IPPROTO_IP`.
    ///   - name: The option's number.
    ///   - description: The option's C name, for error messages.
    /// - Returns: The option.
    public static func integer(level: CInt, name: CInt, description: StaticString) -> Socket.Option<Int> {
        Socket.Option(level, name, description, .int, encode: { .int(CInt(clamping: $0)) }, decode: {
            if case .int(let value) = $0 { return Int(value) }
            return 0
        })
    }

    /// The size of the kernel's receive buffer, in bytes.
    ///
    /// Linux doubles the value set (for its bookkeeping) and reports the doubled value; every
    /// system caps it (`net.core.rmem_max` on Linux).
    ///
    /// The corresponding C option is `SO_RCVBUF` (level `SOL_SOCKET`).
    public static var receiveBufferSize: Socket.Option<Int> {
        .integer(level: SOL_SOCKET, name: SO_RCVBUF, description: "SO_RCVBUF")
    }

    /// The size of the kernel's send buffer, in bytes.
    ///
    /// Linux doubles the value set and reports the doubled value; every system caps it
    /// (`net.core.wmem_max` on Linux).
    ///
    /// The corresponding C option is `SO_SNDBUF` (level `SOL_SOCKET`).
    public static var sendBufferSize: Socket.Option<Int> {
        .integer(level: SOL_SOCKET, name: SO_SNDBUF, description: "SO_SNDBUF")
    }

    /// How many unanswered keep-alive probes end the connection.
    ///
    /// The corresponding C option is `TCP_KEEPCNT` (level `IPPROTO_TCP`).
    public static var keepAliveCount: Socket.Option<Int> {
        .integer(level: cInt(IPPROTO_TCP), name: TCP_KEEPCNT, description: "TCP_KEEPCNT")
    }
}

extension Socket.Option where Value == Duration {
    private static func seconds(level: CInt, name: CInt, description: StaticString) -> Socket.Option<Duration> {
        Socket.Option(level, name, description, .int, encode: { .int(wholeSeconds($0)) }, decode: {
            if case .int(let value) = $0 { return .seconds(Int64(value)) }
            return .zero
        })
    }

    /// How long a connection stays idle before the first keep-alive probe; whole seconds,
    /// rounded up.
    ///
    /// The corresponding C option is `TCP_KEEPIDLE` (`TCP_KEEPALIVE` on Darwin), level `IPPROTO_TCP`.
    public static var keepAliveIdle: Socket.Option<Duration> {
        #if canImport(Darwin)
        seconds(level: cInt(IPPROTO_TCP), name: TCP_KEEPALIVE, description: "TCP_KEEPALIVE")
        #else
        seconds(level: cInt(IPPROTO_TCP), name: TCP_KEEPIDLE, description: "TCP_KEEPIDLE")
        #endif
    }

    /// The time between keep-alive probes; whole seconds, rounded up.
    ///
    /// The corresponding C option is `TCP_KEEPINTVL` (level `IPPROTO_TCP`).
    public static var keepAliveInterval: Socket.Option<Duration> {
        seconds(level: cInt(IPPROTO_TCP), name: TCP_KEEPINTVL, description: "TCP_KEEPINTVL")
    }
}

extension Socket.Option where Value == Duration? {
    /// What `close` does with unsent data: `nil` (the default) returns at once and lets the
    /// kernel send it in the background; a duration makes a blocking close wait that long for
    /// it; zero discards it and sends a reset (RST) to the peer. Whole seconds, rounded up.
    ///
    /// The corresponding C option is `SO_LINGER` (`SO_LINGER_SEC` on Darwin, whose `SO_LINGER`
    /// counts clock ticks), level `SOL_SOCKET`.
    public static var linger: Socket.Option<Duration?> {
        #if canImport(Darwin)
        let name = SO_LINGER_SEC
        let cName: StaticString = "SO_LINGER_SEC"
        #else
        let name = SO_LINGER
        let cName: StaticString = "SO_LINGER"
        #endif
        return Socket.Option(SOL_SOCKET, name, cName, .linger, encode: { value in
            var setting = CLinger()
            if let value {
                setting.l_onoff = 1
                setting.l_linger = numericCast(wholeSeconds(value))
            }
            return .linger(setting)
        }, decode: { value in
            guard case .linger(let setting) = value, setting.l_onoff != 0 else { return nil }
            return .seconds(Int64(setting.l_linger))
        })
    }

    private static func timeout(name: CInt, description: StaticString) -> Socket.Option<Duration?> {
        Socket.Option(SOL_SOCKET, name, description, .time, encode: { value in
            .time(value.map(timeValue) ?? timeval())
        }, decode: { value in
            guard case .time(let time) = value, time.tv_sec != 0 || time.tv_usec != 0 else { return nil }
            return duration(of: time)
        })
    }

    /// How long a blocking receive waits before it gives up and returns `nil` (as if it would
    /// block); `nil` waits without limit. Rounded up to the microsecond.
    ///
    /// The corresponding C option is `SO_RCVTIMEO` (level `SOL_SOCKET`).
    public static var receiveTimeout: Socket.Option<Duration?> {
        timeout(name: SO_RCVTIMEO, description: "SO_RCVTIMEO")
    }

    /// How long a blocking send waits before it gives up and returns `nil` (as if it would
    /// block); `nil` waits without limit. Rounded up to the microsecond.
    ///
    /// The corresponding C option is `SO_SNDTIMEO` (level `SOL_SOCKET`).
    public static var sendTimeout: Socket.Option<Duration?> {
        timeout(name: SO_SNDTIMEO, description: "SO_SNDTIMEO")
    }
}
