#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

extension Socket {
    /// A socket type: how data is delivered.
    ///
    /// The C name is the socket type (`SOCK_*`), the second argument of `socket`.
    public struct Kind: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
        /// The C `SOCK_*` value.
        public let rawValue: CInt

        /// Creates a socket type from its C value.
        ///
        /// - Parameter rawValue: A `SOCK_*` constant, without `SOCK_NONBLOCK` or `SOCK_CLOEXEC`.
        public init(rawValue: CInt) {
            self.rawValue = rawValue
        }

        /// A reliable, ordered byte stream: TCP, or a Unix stream socket.
        ///
        /// The corresponding C constant is `SOCK_STREAM`.
        public static var stream: Kind { Kind(rawValue: cInt(SOCK_STREAM)) }

        /// Unreliable, unordered messages of bounded size: UDP, or a Unix datagram socket.
        ///
        /// The corresponding C constant is `SOCK_DGRAM`.
        public static var datagram: Kind { Kind(rawValue: cInt(SOCK_DGRAM)) }

        /// Reliable, ordered messages with boundaries (Unix domain, and SCTP where available).
        ///
        /// The corresponding C constant is `SOCK_SEQPACKET`.
        public static var sequencedPacket: Kind { Kind(rawValue: cInt(SOCK_SEQPACKET)) }

        /// Raw network protocol access; needs privileges.
        ///
        /// The corresponding C constant is `SOCK_RAW`.
        public static var raw: Kind { Kind(rawValue: cInt(SOCK_RAW)) }

        /// The type's name: `stream`, `datagram`, `sequencedPacket`, `raw`, or `type N`.
        public var description: String {
            switch self {
            case .stream: "stream"
            case .datagram: "datagram"
            case .sequencedPacket: "sequencedPacket"
            case .raw: "raw"
            default: "type \(rawValue)"
            }
        }
    }

    /// An IP protocol number, the third argument of `socket`.
    public struct IPProtocol: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
        /// The C `IPPROTO_*` value.
        public let rawValue: CInt

        /// Creates a protocol from its C value.
        ///
        /// - Parameter rawValue: An `IPPROTO_*` constant.
        public init(rawValue: CInt) {
            self.rawValue = rawValue
        }

        /// TCP.
        ///
        /// The corresponding C constant is `IPPROTO_TCP`.
        public static var tcp: IPProtocol { IPProtocol(rawValue: cInt(IPPROTO_TCP)) }

        /// UDP.
        ///
        /// The corresponding C constant is `IPPROTO_UDP`.
        public static var udp: IPProtocol { IPProtocol(rawValue: cInt(IPPROTO_UDP)) }

        /// The protocol's name: `tcp`, `udp`, or `protocol N`.
        public var description: String {
            switch self {
            case .tcp: "tcp"
            case .udp: "udp"
            default: "protocol \(rawValue)"
            }
        }
    }

    /// Flags for sending and receiving, and the flags a receive reports.
    ///
    /// Every send also carries `MSG_NOSIGNAL` on Linux and FreeBSD, added by Strata.
    public struct MessageFlags: OptionSet, Hashable, Sendable {
        /// The C `MSG_*` bits.
        public let rawValue: CInt

        /// Creates flags from C `MSG_*` bits.
        ///
        /// - Parameter rawValue: The bits.
        public init(rawValue: CInt) {
            self.rawValue = rawValue
        }

        /// Receive: return data without removing it from the queue.
        ///
        /// The corresponding C constant is `MSG_PEEK`.
        public static var peek: MessageFlags { MessageFlags(rawValue: cInt(MSG_PEEK)) }

        /// Receive: on a blocking socket, wait until the whole buffer is filled (or EOF, or an error).
        ///
        /// The corresponding C constant is `MSG_WAITALL`.
        public static var waitAll: MessageFlags { MessageFlags(rawValue: cInt(MSG_WAITALL)) }

        /// Send or receive: do not block this one call, even on a blocking socket.
        ///
        /// The corresponding C constant is `MSG_DONTWAIT`.
        public static var dontWait: MessageFlags { MessageFlags(rawValue: cInt(MSG_DONTWAIT)) }

        /// Send or receive out-of-band (urgent) data.
        ///
        /// The corresponding C constant is `MSG_OOB`.
        public static var outOfBand: MessageFlags { MessageFlags(rawValue: cInt(MSG_OOB)) }

        /// Send: bypass routing; the destination must be on a directly attached network.
        ///
        /// The corresponding C constant is `MSG_DONTROUTE`.
        public static var dontRoute: MessageFlags { MessageFlags(rawValue: cInt(MSG_DONTROUTE)) }

        /// Reported by a receive: the datagram was larger than the buffer and was cut.
        ///
        /// The corresponding C constant is `MSG_TRUNC`.
        public static var truncated: MessageFlags { MessageFlags(rawValue: cInt(MSG_TRUNC)) }

        /// Reported by a message receive: the control data (such as passed descriptors) did not fit
        /// and was cut; descriptors that did not fit were closed by the kernel.
        ///
        /// The corresponding C constant is `MSG_CTRUNC`.
        public static var controlTruncated: MessageFlags { MessageFlags(rawValue: cInt(MSG_CTRUNC)) }

        /// Send: this ends a record (for sequenced-packet sockets).
        ///
        /// The corresponding C constant is `MSG_EOR`.
        public static var endOfRecord: MessageFlags { MessageFlags(rawValue: cInt(MSG_EOR)) }

        #if os(Linux)
        /// Send (Linux): more data follows; hold this data back to fill a segment (like `TCP_CORK`).
        ///
        /// The corresponding C constant is `MSG_MORE`.
        public static var more: MessageFlags { MessageFlags(rawValue: cInt(MSG_MORE)) }
        #endif
    }

    /// Readiness conditions of a socket, for ``Socket/poll(for:timeout:)``.
    public struct PollEvents: OptionSet, Hashable, Sendable {
        /// The C `POLL*` bits.
        public let rawValue: Int16

        /// Creates conditions from C `POLL*` bits.
        ///
        /// - Parameter rawValue: The bits.
        public init(rawValue: Int16) {
            self.rawValue = rawValue
        }

        /// Data can be read without blocking, a connection can be accepted, or the peer closed.
        ///
        /// The corresponding C constant is `POLLIN`.
        public static var readable: PollEvents { PollEvents(rawValue: Int16(POLLIN)) }

        /// Data can be written without blocking, or a nonblocking connect finished.
        ///
        /// The corresponding C constant is `POLLOUT`.
        public static var writable: PollEvents { PollEvents(rawValue: Int16(POLLOUT)) }

        /// Urgent (out-of-band) data can be read.
        ///
        /// The corresponding C constant is `POLLPRI`.
        public static var priority: PollEvents { PollEvents(rawValue: Int16(POLLPRI)) }

        /// Reported only: an error is pending (read it with ``Socket/soError()``).
        ///
        /// The corresponding C constant is `POLLERR`.
        public static var error: PollEvents { PollEvents(rawValue: Int16(POLLERR)) }

        /// Reported only: the connection was closed in both directions.
        ///
        /// The corresponding C constant is `POLLHUP`.
        public static var hangUp: PollEvents { PollEvents(rawValue: Int16(POLLHUP)) }
    }

    /// Which direction of a connection ``Socket/shutdown(_:)`` ends.
    public enum ShutdownDirection: Hashable, Sendable {
        /// Stop receiving: further reads return end-of-file.
        ///
        /// The corresponding C constant is `SHUT_RD`.
        case read
        /// Stop sending: the peer reads end-of-file once it has read what was sent.
        ///
        /// The corresponding C constant is `SHUT_WR`.
        case write
        /// Both directions.
        ///
        /// The corresponding C constant is `SHUT_RDWR`.
        case both

        var rawValue: CInt {
            switch self {
            case .read: cInt(SHUT_RD)
            case .write: cInt(SHUT_WR)
            case .both: cInt(SHUT_RDWR)
            }
        }
    }

    /// The outcome of starting a connection.
    public enum ConnectResult: Hashable, Sendable {
        /// The connection is established.
        case connected
        /// A nonblocking connection is under way: wait until the socket is writable, then call
        /// ``Socket/finishConnect()``.
        case inProgress
    }

    /// A connection taken from a listening socket: the new socket and the peer's address.
    ///
    /// Take the socket out with `let socket = accepted.socket` (the type is `@frozen` so that its
    /// fields can be moved out one by one).
    @frozen
    public struct Accepted: ~Copyable, Sendable {
        /// The connected socket.
        public var socket: Socket

        /// The address of the peer that connected.
        public var peerAddress: SocketAddress

        /// Creates an accepted connection.
        ///
        /// - Parameters:
        ///   - socket: The connected socket.
        ///   - peerAddress: The peer's address.
        public init(socket: consuming Socket, peerAddress: SocketAddress) {
            self.socket = socket
            self.peerAddress = peerAddress
        }
    }

    /// Two connected sockets, from ``Socket/makePair(kind:blocking:)``.
    ///
    /// Take the ends out with `let a = pair.first` and `let b = pair.second` (the type is `@frozen`
    /// so that its fields can be moved out one by one).
    @frozen
    public struct Pair: ~Copyable, Sendable {
        /// One end.
        public var first: Socket

        /// The other end.
        public var second: Socket

        /// Creates a pair from two connected sockets.
        ///
        /// - Parameters:
        ///   - first: One end.
        ///   - second: The other end.
        public init(first: consuming Socket, second: consuming Socket) {
            self.first = first
            self.second = second
        }
    }
}
