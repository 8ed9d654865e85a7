#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import StrataThreads
import Testing

@Suite("ThreadsError")
struct ThreadsErrorTests {
    @Test("a system call error prints the message, the call, the errno name, value and text")
    func description() {
        let error = ThreadsError(
            code: .systemCallFailed, message: "Thread.spawn(name: \"io\"): cannot create the thread",
            call: "pthread_create", errnoCode: EAGAIN)
        #expect(error.errnoName == "EAGAIN")
        let expected = "Thread.spawn(name: \"io\"): cannot create the thread; pthread_create: EAGAIN (\(EAGAIN)): "
            + String(cString: strerror(EAGAIN))
        #expect(error.description == expected)
    }

    @Test("an error without a call prints its message alone")
    func messageOnly() {
        let error = ThreadsError(code: .queueFull, message: "ThreadPool.run: the queue is full")
        #expect(error.description == "ThreadPool.run: the queue is full")
        #expect(error.errnoName == nil)
        #expect(error.code.description == "queueFull")
    }

    @Test("aliases print as the POSIX-preferred name; unknown values have none")
    func names() {
        // EWOULDBLOCK is EAGAIN on every supported platform.
        #expect(ThreadsError.name(ofErrno: EWOULDBLOCK) == "EAGAIN")
        #expect(ThreadsError.name(ofErrno: EOPNOTSUPP) == "EOPNOTSUPP")
        #expect(ThreadsError.name(ofErrno: EDEADLK) == "EDEADLK")
        #expect(ThreadsError.name(ofErrno: ETIMEDOUT) == "ETIMEDOUT")
        #expect(ThreadsError.name(ofErrno: 0) == nil)
        #expect(ThreadsError.name(ofErrno: 99_999) == nil)
    }

    @Test("codes compare by kind")
    func codes() {
        #expect(ThreadsError.Code.queueFull == .queueFull)
        #expect(ThreadsError.Code.queueFull != .shutDown)
        let all: [ThreadsError.Code] = [.systemCallFailed, .invalidArgument, .unsupported, .queueFull, .shutDown]
        #expect(Set(all).count == all.count)
        #expect(Set(all.map(\.description)).count == all.count)
    }
}
