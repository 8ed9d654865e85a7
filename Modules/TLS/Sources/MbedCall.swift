import CStrataMbedTLS

/// The one door every mbedTLS call of this module goes through.
///
/// `mbed("mbedtls_ssl_setup") { mbedtls_ssl_setup(ssl, conf) }` runs the call and returns
/// its code. In debug builds a test can install a ``FaultPlan`` for the current task that
/// makes the Nth call return an error instead of running: the fault-injection test walks N
/// from 1 until a whole scenario runs without reaching N, so every call the module makes in
/// that scenario has been failed once, and shows that each failure surfaces as an error.
@inline(__always)
func mbed(_ name: StaticString, _ call: () -> Int32) -> Int32 {
    #if DEBUG
    if let plan = FaultPlan.current, let injected = plan.intercept(name) { return injected }
    #endif
    return call()
}

#if DEBUG
/// A test's plan to fail one mbedTLS call (debug builds only; task-local, so tests running
/// in parallel do not see each other's plans).
final class FaultPlan: @unchecked Sendable {
    @TaskLocal static var current: FaultPlan?

    /// The 1-based index of the call to fail; 0 fails nothing and only counts.
    let failAt: Int
    /// The code the failed call returns.
    let code: Int32
    private(set) var calls = 0
    private(set) var names: [String] = []
    /// The name of the call that was failed, if the plan reached it.
    private(set) var failed: String?

    init(failAt: Int, code: Int32 = MBEDTLS_ERR_SSL_ALLOC_FAILED) {
        self.failAt = failAt
        self.code = code
    }

    func intercept(_ name: StaticString) -> Int32? {
        calls += 1
        names.append(name.description)
        if calls == failAt {
            failed = name.description
            return code
        }
        return nil
    }
}
#endif
