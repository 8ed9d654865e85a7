import StrataSockets
import Testing

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

@Suite("Errno")
struct ErrnoTests {
    /// The static members and the C constants they must equal, with the C name each prints.
    static let members: [(Errno, CInt, String)] = [
        (.wouldBlock, EAGAIN, "EAGAIN"),
        (.interrupted, EINTR, "EINTR"),
        (.badFileDescriptor, EBADF, "EBADF"),
        (.connectionReset, ECONNRESET, "ECONNRESET"),
        (.brokenPipe, EPIPE, "EPIPE"),
        (.addressInUse, EADDRINUSE, "EADDRINUSE"),
        (.addressNotAvailable, EADDRNOTAVAIL, "EADDRNOTAVAIL"),
        (.connectionRefused, ECONNREFUSED, "ECONNREFUSED"),
        (.connectionAborted, ECONNABORTED, "ECONNABORTED"),
        (.tooManyOpenFiles, EMFILE, "EMFILE"),
        (.fileTableOverflow, ENFILE, "ENFILE"),
        (.timedOut, ETIMEDOUT, "ETIMEDOUT"),
        (.notConnected, ENOTCONN, "ENOTCONN"),
        (.inProgress, EINPROGRESS, "EINPROGRESS"),
        (.alreadyInProgress, EALREADY, "EALREADY"),
        (.isConnected, EISCONN, "EISCONN"),
        (.networkUnreachable, ENETUNREACH, "ENETUNREACH"),
        (.hostUnreachable, EHOSTUNREACH, "EHOSTUNREACH"),
        (.noBufferSpace, ENOBUFS, "ENOBUFS"),
        (.messageTooLong, EMSGSIZE, "EMSGSIZE"),
        (.invalidArgument, EINVAL, "EINVAL"),
        (.permissionDenied, EACCES, "EACCES"),
        (.notPermitted, EPERM, "EPERM"),
        (.notSocket, ENOTSOCK, "ENOTSOCK"),
        (.badAddress, EFAULT, "EFAULT"),
        (.addressFamilyNotSupported, EAFNOSUPPORT, "EAFNOSUPPORT"),
        (.protocolNotAvailable, ENOPROTOOPT, "ENOPROTOOPT"),
        (.noSuchFileOrDirectory, ENOENT, "ENOENT"),
    ]

    @Test("static members take the C constants and print their C names", arguments: members)
    func staticMembers(errno: Errno, value: CInt, name: String) {
        #expect(errno.rawValue == value)
        #expect(errno.name == name)
        #expect(Errno(named: name) == errno)
    }

    @Test("description is NAME (value): strerror text")
    func description() {
        let errno = Errno.wouldBlock
        let expected = "EAGAIN (\(EAGAIN)): \(String(cString: strerror(EAGAIN)))"
        #expect(errno.description == expected)
        #expect(String(describing: Errno.connectionRefused) == "ECONNREFUSED (\(ECONNREFUSED)): \(String(cString: strerror(ECONNREFUSED)))")
        #if canImport(Glibc)
        #expect(errno.description == "EAGAIN (11): Resource temporarily unavailable")
        #endif
    }

    @Test("a value without a name prints as errno N")
    func unnamedValue() {
        let errno = Errno(rawValue: 4242)
        #expect(errno.name == "errno 4242")
        #expect(errno.description.hasPrefix("errno 4242 (4242): "))
        #expect(!errno.message.isEmpty)
    }

    @Test("named lookup uses the portable C names")
    func namedLookup() {
        #expect(Errno(named: "EAGAIN")?.rawValue == EAGAIN)
        #expect(Errno(named: "EWOULDBLOCK")?.rawValue == EWOULDBLOCK)
        #expect(Errno(named: "EMFILE") == .tooManyOpenFiles)
        #expect(Errno(named: "ECONNRESET") == .connectionReset)
        #expect(Errno(named: "eagain") == nil)
        #expect(Errno(named: "ENOTANERRNO") == nil)
        #expect(Errno(named: "") == nil)
    }

    @Test("current reads and writes the thread's errno")
    func current() {
        Errno.current = .connectionReset
        #expect(Errno.current == .connectionReset)
        Errno.current = Errno(rawValue: 0)
        #expect(Errno.current.rawValue == 0)
    }

    static let kinds: [(Errno, Errno.Kind)] = [
        (.wouldBlock, .wouldBlock),
        (Errno(rawValue: EWOULDBLOCK), .wouldBlock),
        (.interrupted, .interrupted),
        (.connectionReset, .connectionReset),
        (.brokenPipe, .brokenPipe),
        (.socketShutdown, .brokenPipe),
        (.connectionAborted, .connectionAborted),
        (.networkReset, .connectionAborted),
        (.connectionRefused, .connectionRefused),
        (.addressInUse, .addressInUse),
        (.addressNotAvailable, .addressNotAvailable),
        (.tooManyOpenFiles, .tooManyOpenFiles),
        (.fileTableOverflow, .tooManyOpenFiles),
        (.timedOut, .timedOut),
        (.notConnected, .notConnected),
        (.destinationAddressRequired, .notConnected),
        (.isConnected, .alreadyConnected),
        (.inProgress, .inProgress),
        (.alreadyInProgress, .inProgress),
        (.networkUnreachable, .networkUnreachable),
        (.networkDown, .networkUnreachable),
        (.hostUnreachable, .hostUnreachable),
        (.hostDown, .hostUnreachable),
        (.noBufferSpace, .noBufferSpace),
        (.noMemory, .noBufferSpace),
        (.messageTooLong, .messageTooLong),
        (.permissionDenied, .permissionDenied),
        (.notPermitted, .permissionDenied),
        (.invalidArgument, .invalidArgument),
        (.addressFamilyNotSupported, .unsupported),
        (.operationNotSupported, .unsupported),
        (.protocolNotAvailable, .unsupported),
        (.noSuchFileOrDirectory, .noSuchFile),
        (.badFileDescriptor, .programmerError),
        (.badAddress, .programmerError),
        (.notSocket, .programmerError),
        (.ioError, .other),
    ]

    @Test("classification folds aliases and near-synonyms", arguments: kinds)
    func classification(errno: Errno, kind: Errno.Kind) {
        #expect(errno.kind == kind, "\(errno) should be \(kind), is \(errno.kind)")
    }

    @Test("boolean classification")
    func booleans() {
        #expect(Errno.wouldBlock.isWouldBlock)
        #expect(Errno(rawValue: EWOULDBLOCK).isWouldBlock)
        #expect(!Errno.interrupted.isWouldBlock)
        #expect(Errno.interrupted.isInterrupted)
        #expect(Errno.connectionReset.isConnectionReset)
        #expect(!Errno.brokenPipe.isConnectionReset)
        #expect(Errno.brokenPipe.isBrokenPipe)
        #expect(Errno.connectionAborted.isConnectionAborted)
        #expect(Errno.connectionRefused.isConnectionRefused)
        #expect(Errno.addressInUse.isAddressInUse)
        #expect(Errno.addressNotAvailable.isAddressNotAvailable)
        #expect(Errno.tooManyOpenFiles.isTooManyOpenFiles)
        #expect(Errno.fileTableOverflow.isTooManyOpenFiles)
        #expect(Errno.timedOut.isTimedOut)
        #expect(Errno.notConnected.isNotConnected)
        #expect(Errno.connectionReset.isDisconnection && Errno.brokenPipe.isDisconnection)
        #expect(!Errno.timedOut.isDisconnection)
        #expect(Errno.badFileDescriptor.isProgrammerError)
        #expect(!Errno.wouldBlock.isProgrammerError)
        #expect(Errno.Kind.connectionReset.description == "connectionReset")
    }

    @Test("~= matches Errno, SystemCallError and SocketError in catch clauses")
    func patternMatching() {
        func throwing(_ error: any Error) throws {
            throw error
        }
        var matched = 0
        do {
            try throwing(Errno.connectionReset)
        } catch Errno.connectionReset {
            matched += 1
        } catch {
            Issue.record("an Errno did not match: \(error)")
        }
        do {
            try throwing(SystemCallError(systemCall: "recv", errno: .connectionReset))
        } catch Errno.connectionReset {
            matched += 1
        } catch {
            Issue.record("a SystemCallError did not match: \(error)")
        }
        let socketError = SocketError(
            code: .brokenPipe, message: "m", cause: SystemCallError(systemCall: "send", errno: .brokenPipe))
        do {
            try throwing(socketError)
        } catch Errno.connectionReset {
            Issue.record("EPIPE matched ECONNRESET")
        } catch Errno.brokenPipe {
            matched += 1
        } catch {
            Issue.record("a SocketError did not match: \(error)")
        }
        switch socketError {
        case Errno.brokenPipe: matched += 1
        default: Issue.record("switch over a SocketError did not match")
        }
        #expect(matched == 4)
        #expect(!(Errno.wouldBlock ~= (CancellationError() as any Error)))
    }
}
