#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// SIGINT and SIGTERM for servers that shut down gracefully, without signal handlers.
///
/// ```swift
/// TerminationSignals.block()          // first thing in main, before any thread starts
/// let group = try LoopGroup(loops: 2)
/// // … serve …
/// let signal = TerminationSignals.wait()   // blocks until SIGINT or SIGTERM
/// _ = await group.shutdownGracefully(timeout: .seconds(10))
/// ```
///
/// `block()` blocks both signals in the calling thread; threads started afterwards inherit
/// the mask, so the signals stay pending until `wait()` takes one (`sigwait`). A second
/// signal during the shutdown stays pending (a second `wait()` can take it to force the exit).
public enum TerminationSignals {
    private static func set() -> sigset_t {
        var set = sigset_t()
        sigemptyset(&set)
        sigaddset(&set, SIGINT)
        sigaddset(&set, SIGTERM)
        return set
    }

    /// Blocks SIGINT and SIGTERM in the calling thread (and the threads it starts later),
    /// and resets them to their default action in case the parent ignored them.
    public static func block() {
        var s = set()
        pthread_sigmask(SIG_BLOCK, &s, nil)
        signal(SIGINT, SIG_DFL)
        signal(SIGTERM, SIG_DFL)
    }

    /// Waits for SIGINT or SIGTERM and returns its number.
    public static func wait() -> CInt {
        var s = set()
        var received: CInt = 0
        while sigwait(&s, &received) != 0 {}
        return received
    }

    /// The name of a signal number (`SIGTERM`), for logs.
    public static func name(_ signal: CInt) -> String {
        switch signal {
        case SIGINT: "SIGINT"
        case SIGTERM: "SIGTERM"
        default: "signal \(signal)"
        }
    }
}
