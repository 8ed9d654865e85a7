// strata-fetch: a small HTTP/1.1 client for http:// and https:// URLs, on one Sched loop with
// StrataTLS. Flags are curl's where the two overlap (README.md has the list and exit codes).
//
//   strata-fetch [-v] [--cacert FILE] [--cert FILE --key FILE] [--resolve HOST:PORT:ADDR]
//                [-X METHOD] [-H "Name: value"] [--data-binary @FILE|DATA] [-o FILE] URL
//
// Exit status 0 only when the response arrived complete, and for https over a session whose
// server was fully verified; otherwise curl's exit code and one line on stderr with the reason.
// Verification cannot be disabled (there is no -k/--insecure).
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import StrataSched
import StrataTLS

// A closed pipe on stdout (`strata-fetch URL | head -c 10`) is a write error (23), not a
// signal; a closed descriptor 0, 1 or 2 is held by /dev/null so nothing else gets its number.
signal(SIGPIPE, SIG_IGN)
let stdoutClosed = reserveStandardDescriptors()

let options: Options
do throws(FetchFailure) {
    options = try parseOptions(Array(CommandLine.arguments.dropFirst()))
} catch {
    printError("strata-fetch: \(error.reason)")
    exit(error.code)
}
if options.help {
    printOut(usageText + "\n")
    exit(0)
}
if options.version {
    let v = MbedTLSBuild.versionNumber
    printOut("strata-fetch 0.1 (StrataTLS, mbedTLS \(v >> 24).\((v >> 16) & 0xFF).\((v >> 8) & 0xFF))\n")
    exit(0)
}

let loop: Loop
do {
    loop = try Loop.start(name: "strata-fetch")
} catch {
    printError("strata-fetch: cannot start the event loop: \(error)")
    exit(Exit.usage)
}
let status = await Task(executorPreference: loop) {
    await Fetcher(options: options, loop: loop, stdoutClosed: stdoutClosed).run()
}.value
loop.stop()
exit(status)
