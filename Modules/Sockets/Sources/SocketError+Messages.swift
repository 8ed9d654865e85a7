// One message per system call and error number: what the error means in this situation and how
// to fix it. Programmer errors (EBADF, EFAULT, ENOTSOCK) trap here, naming the descriptor and the
// operation, so that no caller can forget to.

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

extension SocketError {
    /// The error for `call` failing with `errno`, or a trap when the errno is a programmer error.
    ///
    /// - Parameters:
    ///   - call: The C name of the failed call, used in the message and in ``cause``.
    ///   - errno: The error number the call reported.
    ///   - descriptor: The socket the call was made on (for the trap message); -1 when none.
    ///   - address: The address the call used, printed after the call name.
    ///   - option: The socket option's C name, for `setsockopt`/`getsockopt`.
    ///   - byteCount: The size of the message, for `EMSGSIZE`.
    ///   - otherDescriptor: A second descriptor involved, such as the file of `sendfile`.
    init(
        _ call: String,
        errno: Errno,
        descriptor: CInt,
        address: SocketAddress? = nil,
        option: StaticString? = nil,
        byteCount: Int? = nil,
        otherDescriptor: CInt? = nil
    ) {
        if errno.isProgrammerError {
            trapOnProgrammerError(call, errno: errno, descriptor: descriptor, otherDescriptor: otherDescriptor)
        }
        var prefix = call
        if let option {
            prefix += " \(option)"
        }
        if let address {
            prefix += " \(address)"
        }
        let (explanation, fix) = Self.explain(call, errno, address: address, option: option, byteCount: byteCount)
        self.init(
            code: Code(errno),
            message: "\(prefix): \(errno.name) (\(errno.rawValue)): \(explanation) — \(fix)",
            cause: SystemCallError(systemCall: call, errno: errno),
            address: address
        )
    }

    /// The explanation and the fix for `call` failing with `errno`.
    private static func explain(
        _ call: String,
        _ errno: Errno,
        address: SocketAddress?,
        option: StaticString?,
        byteCount: Int?
    ) -> (String, String) {
        let isUnix = address?.family == .unix
        let isAbstract = address?.unix?.isAbstract ?? false
        let sending = call == "send" || call == "sendto" || call == "sendmsg" || call == "sendfile"
        let receiving = call == "recv" || call == "recvfrom" || call == "recvmsg"
        let optionName = option.map { "\($0)" } ?? "the option"

        switch errno {
        case .addressInUse:
            if call == "bind" && isAbstract {
                return ("address already in use, another socket holds this abstract name",
                        "stop the other server or pick another name")
            }
            if call == "bind" && isUnix {
                return ("address already in use, a file already exists at this socket path",
                        "remove the stale socket file if no server uses it, or pick another path")
            }
            if call == "bind" {
                return ("address already in use", "stop the other server or pick another port")
            }
            if call == "listen" {
                return ("address already in use, another socket is already listening on this port",
                        "stop the other server or pick another port")
            }
            if call == "connect" {
                return ("address already in use, no local port is free for this destination",
                        "close connections that linger in TIME_WAIT or widen the ephemeral port range (\(ephemeralPortRangeSetting))")
            }
            return ("address already in use", "pick another address or port")

        case .addressNotAvailable:
            if call == "bind" {
                return ("address not available, no local interface has this address",
                        "bind to an address this host owns, or to 0.0.0.0 or ::")
            }
            return ("address not available, no local port is free or the destination cannot be used from here",
                    "close idle connections (TIME_WAIT), widen the ephemeral port range (\(ephemeralPortRangeSetting)) or check the destination address")

        case .permissionDenied:
            if call == "bind" && isUnix {
                return ("permission denied, this process may not create the socket file in that directory",
                        "pick a directory the process can write, or fix the directory's permissions")
            }
            if call == "bind", let port = address?.port, port > 0, port < 1024 {
                return ("permission denied, ports below 1024 need privileges",
                        "use a port of 1024 or above, or \(privilegedPortFix)")
            }
            if call == "connect" && isUnix {
                return ("permission denied, this process may not write to the socket file or search its directory",
                        "fix the socket file's permissions or run as a user allowed to use it")
            }
            if call == "socket" {
                return ("permission denied, this process may not create sockets of this type",
                        "run with the privilege the socket type needs (raw sockets need CAP_NET_RAW) or use another type")
            }
            if sending || call == "connect" {
                return ("permission denied, sending to a broadcast address needs the broadcast option, or a firewall rule refused it",
                        "set Socket.Option.broadcast for broadcast destinations, or check the firewall rules")
            }
            return ("permission denied", "check the process's privileges and the security policy")

        case .notPermitted:
            return ("operation not permitted, a firewall rule or security policy refused it",
                    "check the firewall rules (\(firewallName)) and the process's security policy")

        case .connectionRefused:
            if call == "connect" && isUnix {
                return ("connection refused, the socket file exists but no server listens on it",
                        "start the server, or remove the stale socket file")
            }
            if call == "connect" {
                return ("connection refused, nothing is listening there", "start the server or check the address and port")
            }
            return ("connection refused, the peer's port is closed (an ICMP port unreachable answered an earlier datagram)",
                    "start the peer or check its address and port")

        case .connectionReset:
            return ("connection reset by peer, the peer closed the connection abruptly",
                    "treat the connection as closed; reconnect if the protocol allows it")

        case .brokenPipe, .socketShutdown:
            return ("broken pipe, the peer closed the connection or this side shut down writing",
                    "stop writing and close the socket")

        case .connectionAborted:
            if call == "accept" {
                return ("connection aborted, the client gave up while it waited in the backlog",
                        "accept the next connection")
            }
            return ("connection aborted by the local network stack", "close the socket and reconnect")

        case .networkReset:
            return ("connection dropped by the network, keep-alive found the path broken",
                    "close the socket and reconnect")

        case .timedOut:
            if call == "connect" {
                return ("connection timed out, the host did not answer",
                        "check that the host is up and that no firewall drops the packets")
            }
            return ("connection timed out, the peer stopped acknowledging data (retransmission or keep-alive timeout)",
                    "close the connection and reconnect")

        case .networkUnreachable:
            return ("network unreachable, there is no route to that network",
                    "check the address, the routing table and that an interface of this family (IPv4 or IPv6) is configured")

        case .networkDown:
            return ("network is down, the interface of the route is down",
                    "bring the interface up or check the network configuration")

        case .hostUnreachable, .hostDown:
            return ("no route to host, the host does not answer or a router reported it unreachable",
                    "check that the host is up, the address, and the firewall rules")

        case .tooManyOpenFiles:
            let limit: String
            switch sysDescriptorLimit() {
            case .some(.some(let soft)): limit = " (RLIMIT_NOFILE soft limit \(soft))"
            case .some(.none): limit = " (RLIMIT_NOFILE soft limit unlimited)"
            case .none: limit = ""
            }
            return ("too many open files, this process reached its descriptor limit\(limit)",
                    "close idle connections or raise the limit (ulimit -n / setrlimit)")

        case .fileTableOverflow:
            return ("too many open files in the system, the kernel's file table is full",
                    "close descriptors in other processes or raise the system limit (\(systemFileLimitSetting))")

        case .noBufferSpace, .noMemory:
            return ("\(errno == .noMemory ? "not enough memory" : "no buffer space available"), the kernel is short of socket memory",
                    "retry later, send less at once, or raise the kernel's socket memory limits")

        case .messageTooLong:
            let size = byteCount.map { " of \($0) bytes" } ?? ""
            return ("message too long, a datagram\(size) is larger than this socket can send in one piece",
                    "send smaller datagrams (at most 65507 payload bytes over IPv4 UDP, and below the path MTU to avoid fragmentation)")

        case .notConnected:
            if call == "shutdown" {
                return ("not connected, the connection was never established or is already gone",
                        "there is nothing to shut down; close the socket")
            }
            if call == "getpeername" {
                return ("not connected, the socket has no peer", "connect the socket first")
            }
            return ("not connected", "connect the socket first, or give a destination address for datagrams")

        case .destinationAddressRequired:
            return ("destination address required, the socket is not connected",
                    "use send(_:to:) with an address, or connect the socket first")

        case .isConnected:
            if sending {
                return ("already connected, a destination address was given to a connected socket",
                        "send without an address, or use an unconnected socket")
            }
            return ("already connected", "use the existing connection, or create a new socket")

        case .addressFamilyNotSupported:
            if call == "socket" || call == "socketpair" {
                return ("address family not supported by this system",
                        "use another address family (is IPv6 disabled on this host?)")
            }
            return ("address family not supported, the address's family does not match the socket's",
                    "create the socket with the address's family (SocketAddress.family)")

        case .protocolNotSupported, .socketTypeNotSupported, .wrongProtocolType, .protocolFamilyNotSupported:
            return ("protocol not supported for this family and socket type",
                    "pair the protocol with a matching socket type (TCP with stream, UDP with datagram)")

        case .protocolNotAvailable:
            return ("option not supported, \(optionName) is unknown for this socket's protocol or on this system",
                    "set \(optionName) only on sockets that support it")

        case .operationNotSupported, .notSupported:
            if call == "listen" || call == "accept" {
                return ("operation not supported, only stream sockets listen and accept connections",
                        "use a stream (TCP or Unix stream) socket to listen")
            }
            if sending || receiving {
                return ("operation not supported, a message flag does not suit this socket type",
                        "remove the flag, or use a socket type that supports it")
            }
            return ("operation not supported on this socket", "check the socket's family and type")

        case .notImplemented:
            return ("function not implemented by this kernel", "run on a newer kernel, or avoid this call")

        case .invalidArgument:
            switch call {
            case "bind":
                return ("invalid argument, the socket is already bound or the address does not suit it",
                        "bind a fresh socket once, before connect or listen")
            case "listen":
                return ("invalid argument, the socket is connected or cannot listen",
                        "listen on a fresh stream socket")
            case "accept":
                return ("invalid argument, the socket is not listening", "call listen(backlog:) before accept()")
            case "connect":
                return ("invalid argument, the address does not suit this socket", "check the address's family")
            case "setsockopt":
                return ("invalid argument, \(optionName) does not accept this value or this socket's state",
                        "use a value \(optionName) accepts")
            case "sendfile":
                return ("invalid argument, this file cannot be sent with sendfile (not a regular file, or a bad offset or count)",
                        "fall back to reading the file and sending the bytes")
            case "sendmsg":
                return ("invalid argument, the message is malformed (too many buffers or descriptors)",
                        "send fewer buffers or descriptors per message")
            default:
                return ("invalid argument", "check the arguments against the \(call)(2) manual page")
            }

        case .noSuchFileOrDirectory, .notDirectory:
            if call == "bind" {
                return ("no such file or directory, the socket file's directory does not exist",
                        "create the directory first")
            }
            return ("no such file or directory, no socket file exists at this path",
                    "start the server or check the path")

        case .tooManySymbolicLinkLevels, .fileNameTooLong:
            return ("the socket path cannot be resolved (too long, or too many symbolic links)",
                    "use a shorter path without symbolic link loops")

        case .readOnlyFileSystem:
            return ("read-only file system, the socket file cannot be created there",
                    "put the socket on a writable file system")

        case .wouldBlock:
            if call == "connect" {
                return ("resource temporarily unavailable, the server's listen backlog is full",
                        "retry later, or raise the server's listen backlog")
            }
            return ("resource temporarily unavailable", "wait until the socket is ready and retry")

        case .interrupted:
            return ("interrupted by a signal", "retry the operation")

        case .tooManyReferences:
            return ("too many descriptors in flight in SCM_RIGHTS messages",
                    "let the receiver take the descriptors it was sent before sending more")

        case .illegalSeek, .overflow:
            return ("the offset or count is invalid for this file", "check the offset and count against the file's size")

        case .ioError:
            return ("input/output error", "check the file or device behind the descriptor")

        default:
            var text = errno.message
            if let first = text.first, first.isUppercase {
                text = first.lowercased() + text.dropFirst()
            }
            return (text, "see the \(call)(2) manual page")
        }
    }
}

/// Traps for an error number that only a bug in the calling program can cause.
///
/// "Programmer errors crash; operating errors throw": a closed or foreign descriptor, or a bad
/// pointer, means the program's ownership bookkeeping is wrong, and continuing could read or
/// write another connection's data.
func trapOnProgrammerError(_ call: String, errno: Errno, descriptor: CInt, otherDescriptor: CInt? = nil) -> Never {
    let on = otherDescriptor.map { "descriptors \(descriptor) and \($0)" } ?? "descriptor \(descriptor)"
    let why: String
    switch errno {
    case .badFileDescriptor:
        why = "the descriptor is not open: it was closed twice, or used after close() or takeDescriptor()"
    case .notSocket:
        why = "the descriptor is not a socket: a non-socket descriptor was adopted with Socket(adoptingDescriptor:)"
    default:
        why = "a buffer or address pointer was invalid"
    }
    fatalError("StrataSockets: \(call) on \(on) failed with \(errno): \(why). This is a bug in the calling program.")
}

#if os(Linux)
private let ephemeralPortRangeSetting = "net.ipv4.ip_local_port_range"
private let systemFileLimitSetting = "sysctl fs.file-max"
private let privilegedPortFix = "grant CAP_NET_BIND_SERVICE (or lower net.ipv4.ip_unprivileged_port_start)"
private let firewallName = "nftables or iptables"
#elseif canImport(Darwin)
private let ephemeralPortRangeSetting = "sysctl net.inet.ip.portrange.first and .last"
private let systemFileLimitSetting = "sysctl kern.maxfiles"
private let privilegedPortFix = "run the server with root privileges"
private let firewallName = "pf"
#else
private let ephemeralPortRangeSetting = "sysctl net.inet.ip.portrange.first and .last"
private let systemFileLimitSetting = "sysctl kern.maxfiles"
private let privilegedPortFix = "run as root, or set sysctl net.inet.ip.portrange.reservedhigh"
private let firewallName = "pf or ipfw"
#endif
