// A debug-build test hook for the wrappers in Syscalls.swift: force an errno on a named call and
// record which calls ran. Off unless a test binds `SyscallMock.current` (task-local, so tests that
// run in parallel do not see each other's mocks). Release builds compile none of this.

#if DEBUG
import Synchronization

/// Forced errors and a call trace for the system call wrappers, in debug builds only.
final class SyscallMock: Sendable {
    /// How often a forced errno applies.
    enum Repeat: Sendable, Equatable {
        /// The next `count` calls of that name fail; later ones run.
        case counted(Int)
        /// Every call of that name fails.
        case always
    }

    private struct Rule {
        var call: String
        var errno: Errno
        var remaining: Repeat
    }

    private struct State {
        var rules: [Rule] = []
        var trace: [String] = []
    }

    private let state = Mutex(State())

    /// The mock that applies to the current task, if any.
    @TaskLocal static var current: SyscallMock?

    init() {}

    /// Makes calls named `call` fail with `errno`, `repeat` times.
    func force(_ errno: Errno, on call: String, _ repeat: Repeat) {
        state.withLock { $0.rules.append(Rule(call: call, errno: errno, remaining: `repeat`)) }
    }

    /// The names of the calls made so far, in order (a forced failure counts as a call).
    var trace: [String] {
        state.withLock { $0.trace }
    }

    /// Records `call` and returns the errno to force, if a rule applies.
    static func intercept(_ call: StaticString) -> Errno? {
        guard let mock = current else {
            return nil
        }
        let name = call.description
        return mock.state.withLock { state -> Errno? in
            state.trace.append(name)
            guard let index = state.rules.firstIndex(where: { $0.call == name }) else {
                return nil
            }
            let errno = state.rules[index].errno
            switch state.rules[index].remaining {
            case .always:
                break
            case .counted(let count):
                if count <= 1 {
                    state.rules.remove(at: index)
                } else {
                    state.rules[index].remaining = .counted(count - 1)
                }
            }
            return errno
        }
    }
}
#endif
