// Helpers for the strata-serve interop tests: a raw HTTP/1.1 client over blocking sockets
// with a strict response reader, and a runner for external clients (curl, python).
import Foundation
#if canImport(Glibc)
import Glibc
#endif
import Testing

// MARK: External commands

/// What an external command printed and how it ended.
struct CommandResult {
    var status: Int32
    var stdout: [UInt8]
    var stderr: String
    var stdoutText: String { String(decoding: stdout, as: UTF8.self) }
}

/// Runs `executable` (a path, or a name looked up in PATH) with `arguments`; kills it after
/// `timeout` seconds. Output goes through temporary files, so a chatty child cannot block.
func runCommand(_ executable: String, _ arguments: [String], timeout: Double = 60) throws -> CommandResult {
    let process = Process()
    if executable.contains("/") {
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
    } else {
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = [executable] + arguments
    }
    let directory = FileManager.default.temporaryDirectory
    let outURL = directory.appendingPathComponent("strata-http-\(UUID().uuidString).out")
    let errURL = directory.appendingPathComponent("strata-http-\(UUID().uuidString).err")
    _ = FileManager.default.createFile(atPath: outURL.path, contents: nil)
    _ = FileManager.default.createFile(atPath: errURL.path, contents: nil)
    defer {
        try? FileManager.default.removeItem(at: outURL)
        try? FileManager.default.removeItem(at: errURL)
    }
    let out = try FileHandle(forWritingTo: outURL)
    let err = try FileHandle(forWritingTo: errURL)
    process.standardOutput = out
    process.standardError = err
    process.standardInput = FileHandle.nullDevice
    let done = DispatchSemaphore(value: 0)
    process.terminationHandler = { _ in done.signal() }
    try process.run()
    if done.wait(timeout: .now() + timeout) == .timedOut {
        kill(process.processIdentifier, SIGKILL)
        done.wait()
        Issue.record("\(executable) \(arguments) did not finish within \(timeout) s; killed")
    }
    try out.close()
    try err.close()
    let stdout = (try? Data(contentsOf: outURL)).map { [UInt8]($0) } ?? []
    let stderr = (try? String(contentsOf: errURL, encoding: .utf8)) ?? ""
    return CommandResult(status: process.terminationStatus, stdout: stdout, stderr: stderr)
}

/// Debian's python3 (where python3-h11 and python3-httpx are installed by `.ci/deps.sh test`),
/// not a python3 earlier in PATH (pyenv) that lacks them.
var systemPython: String {
    FileManager.default.isExecutableFile(atPath: "/usr/bin/python3") ? "/usr/bin/python3" : "python3"
}

/// Tests/InteropTests/python.
let pythonScripts = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("python")

/// Bytes of a string whose code points are all ≤ U+00FF, one byte each (Latin-1), so test
/// tables can spell any byte (`\u{0}`, `\u{ff}`).
func latin1(_ text: String) -> [UInt8] {
    text.unicodeScalars.map { scalar in
        precondition(scalar.value <= 0xFF, "latin1: \(scalar) is not a byte")
        return UInt8(scalar.value)
    }
}

// MARK: Responses

/// One HTTP/1.x response as read off the wire.
struct WireResponse {
    var version: String
    var status: Int
    var reason: String
    var fields: [(name: String, value: String)]
    var body: [UInt8]
    var chunked: Bool

    /// The first value of `name`, case-insensitively.
    func header(_ name: String) -> String? {
        fields.first { $0.name.lowercased() == name.lowercased() }?.value
    }

    func headers(_ name: String) -> [String] {
        fields.filter { $0.name.lowercased() == name.lowercased() }.map(\.value)
    }

    var connectionClose: Bool {
        headers("Connection").joined(separator: ",").lowercased().split(separator: ",")
            .contains { $0.trimmingCharacters(in: .whitespaces) == "close" }
    }

    var bodyText: String { String(decoding: body, as: UTF8.self) }
}

/// A strict incremental reader of responses: status line `HTTP/1.1 DDD reason`, CRLF only,
/// `name: value` fields with token names, framing by Content-Length, chunked, or (HTTP/1.0
/// style) the close.
enum ResponseParse {
    case needMore
    /// A response and how many bytes it took.
    case response(WireResponse, Int)
    case invalid(String)

    static func tokenByte(_ b: UInt8) -> Bool {
        switch b {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            return true
        default:
            return "!#$%&'*+-.^_`|~".utf8.contains(b)
        }
    }

    /// Parses the first response in `bytes`; `eof` means no more bytes will come.
    static func parse(_ bytes: ArraySlice<UInt8>, isHead: Bool, eof: Bool) -> ResponseParse {
        // The head: lines up to an empty line.
        var lines: [ArraySlice<UInt8>] = []
        var i = bytes.startIndex
        var lineStart = i
        var headEnd: Int?
        while i < bytes.endIndex {
            if bytes[i] == 0x0A {
                guard i > lineStart, bytes[i - 1] == 0x0D else { return .invalid("bare LF in the response head") }
                let line = bytes[lineStart..<(i - 1)]
                if line.contains(0x0D) { return .invalid("bare CR in the response head") }
                if line.isEmpty {
                    headEnd = i + 1
                    break
                }
                lines.append(line)
                lineStart = i + 1
            }
            i += 1
        }
        guard let headEnd else {
            if bytes.count > 1 << 16 { return .invalid("a response head over 64 KiB") }
            return eof && !bytes.isEmpty ? .invalid("end of stream inside a response head") : .needMore
        }
        guard let statusLine = lines.first else { return .invalid("an empty response head") }
        let text = String(decoding: statusLine, as: UTF8.self)
        let parts = text.split(separator: " ", maxSplits: 2, omittingEmptySubsequences: false)
        guard parts.count >= 2, parts[0] == "HTTP/1.1" || parts[0] == "HTTP/1.0", parts[1].count == 3,
              let status = Int(parts[1]), (100...599).contains(status) else {
            return .invalid("bad status line \(text.debugDescription)")
        }
        var response = WireResponse(version: String(parts[0]), status: status, reason: parts.count > 2 ? String(parts[2]) : "",
                                    fields: [], body: [], chunked: false)
        for line in lines.dropFirst() {
            guard let colon = line.firstIndex(of: UInt8(ascii: ":")), colon > line.startIndex,
                  line[..<colon].allSatisfy(tokenByte) else {
                return .invalid("bad field line \(String(decoding: line, as: UTF8.self).debugDescription)")
            }
            let value = line[(colon + 1)...]
            if value.contains(where: { ($0 < 0x20 && $0 != 0x09) || $0 == 0x7F }) { return .invalid("a control byte in a field value") }
            response.fields.append((String(decoding: line[..<colon], as: UTF8.self),
                                    String(decoding: value, as: UTF8.self).trimmingCharacters(in: .whitespaces)))
        }
        let lengths = response.headers("Content-Length")
        let codings = response.headers("Transfer-Encoding")
        if lengths.count > 1 { return .invalid("\(lengths.count) Content-Length fields") }
        if !lengths.isEmpty && !codings.isEmpty { return .invalid("Content-Length and Transfer-Encoding") }
        if (100..<200).contains(status) || status == 204 || status == 304 || isHead {
            if (100..<200).contains(status) || status == 204, !lengths.isEmpty || !codings.isEmpty {
                return .invalid("a \(status) response with framing fields")
            }
            return .response(response, headEnd - bytes.startIndex)
        }
        if let length = lengths.first {
            guard let n = Int(length), n >= 0, length.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else {
                return .invalid("bad Content-Length \(length)")
            }
            guard bytes.endIndex - headEnd >= n else {
                return eof ? .invalid("end of stream after \(bytes.endIndex - headEnd) of \(n) body bytes") : .needMore
            }
            response.body = Array(bytes[headEnd..<(headEnd + n)])
            return .response(response, headEnd + n - bytes.startIndex)
        }
        if !codings.isEmpty {
            guard codings.count == 1, codings[0].lowercased() == "chunked" else { return .invalid("Transfer-Encoding \(codings)") }
            response.chunked = true
            var p = headEnd
            var body: [UInt8] = []
            while true {
                // chunk-size CRLF
                guard let lf = bytes[p...].firstIndex(of: 0x0A) else { return eof ? .invalid("end of stream in a chunk size") : .needMore }
                guard lf > p, bytes[lf - 1] == 0x0D,
                      let size = Int(String(decoding: bytes[p..<(lf - 1)], as: UTF8.self), radix: 16), size >= 0 else {
                    return .invalid("bad chunk size line \(String(decoding: bytes[p..<lf], as: UTF8.self).debugDescription)")
                }
                p = lf + 1
                if size == 0 {
                    // No trailers from this server: the final CRLF.
                    guard bytes.endIndex - p >= 2 else { return eof ? .invalid("end of stream before the last CRLF") : .needMore }
                    guard bytes[p] == 0x0D, bytes[p + 1] == 0x0A else { return .invalid("trailers or junk after the last chunk") }
                    response.body = body
                    return .response(response, p + 2 - bytes.startIndex)
                }
                guard bytes.endIndex - p >= size + 2 else { return eof ? .invalid("end of stream inside a chunk") : .needMore }
                body += bytes[p..<(p + size)]
                guard bytes[p + size] == 0x0D, bytes[p + size + 1] == 0x0A else { return .invalid("chunk data without CRLF") }
                p += size + 2
            }
        }
        // Neither: the body runs to the close (only legitimate without keep-alive).
        guard eof else { return .needMore }
        response.body = Array(bytes[headEnd...])
        return .response(response, bytes.endIndex - bytes.startIndex)
    }
}

// MARK: A raw client

/// How reading ended when no (further) response came.
enum StreamEnd: Equatable, CustomStringConvertible {
    case eof
    case reset
    case timeout
    case error(Int32)
    var description: String {
        switch self {
        case .eof: "end of stream"
        case .reset: "connection reset"
        case .timeout: "timeout"
        case .error(let e): "error \(e)"
        }
    }
}

/// What reading a response produced.
enum ReadOutcome: CustomStringConvertible {
    case response(WireResponse)
    /// No response; `partial` bytes of one (empty: a clean end before any byte).
    case ended(StreamEnd, partial: [UInt8])
    case invalid(String)

    var description: String {
        switch self {
        case .response(let r): "\(r.status) \(r.reason)"
        case .ended(let end, let partial): partial.isEmpty ? "\(end)" : "\(end) after \(partial.count) bytes"
        case .invalid(let why): "invalid response: \(why)"
        }
    }

    var response: WireResponse? { if case .response(let r) = self { r } else { nil } }
}

/// A blocking TCP client with a receive timeout, reading responses strictly.
final class RawHTTPClient {
    let fd: Int32
    var buffer: [UInt8] = []
    var start = 0
    /// Interim (1xx) responses skipped by `readResponse`.
    var interim: [Int] = []
    private(set) var sawEnd: StreamEnd?
    /// Requests sent so far (kept by callers that count).
    var exchanges = 0

    init(port: UInt16, timeout: Double = 5) throws {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }
        var tv = timeval(tv_sec: Int(timeout), tv_usec: Int((timeout - Double(Int(timeout))) * 1e6))
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        var one: Int32 = 1
        setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        address.sin_addr.s_addr = UInt32(0x7F00_0001).bigEndian
        let rc = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard rc == 0 else {
            let e = errno
            Glibc.close(fd)
            throw POSIXError(POSIXErrorCode(rawValue: e) ?? .EIO)
        }
    }

    private var closed = false

    /// Closes the connection now (else deinit does).
    func close() {
        if !closed {
            closed = true
            Glibc.close(fd)
        }
    }

    deinit { close() }

    /// Sends everything; false if the connection failed.
    @discardableResult
    func send(_ bytes: [UInt8]) -> Bool {
        bytes.withUnsafeBytes { raw in
            var offset = 0
            while offset < raw.count {
                let n = Glibc.send(fd, raw.baseAddress! + offset, raw.count - offset, Int32(MSG_NOSIGNAL))
                if n < 0 && errno == EINTR { continue }
                if n <= 0 { return false }
                offset += n
            }
            return true
        }
    }

    @discardableResult
    func send(_ text: String) -> Bool { send(latin1(text)) }

    func shutdownWrite() { shutdown(fd, Int32(SHUT_WR)) }

    /// Reads once into the buffer; nil when bytes arrived.
    func fill() -> StreamEnd? {
        if let sawEnd { return sawEnd }
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n > 0 {
                if start > 0 && start == buffer.count {
                    buffer.removeAll(keepingCapacity: true)
                    start = 0
                }
                buffer += chunk[..<n]
                return nil
            }
            if n == 0 {
                sawEnd = .eof
                return .eof
            }
            switch errno {
            case EINTR: continue
            case EAGAIN: return .timeout  // not sticky: the caller may wait again
            case ECONNRESET:
                sawEnd = .reset
                return .reset
            case let e:
                sawEnd = .error(e)
                return .error(e)
            }
        }
    }

    /// The next final response (1xx are recorded in `interim` and skipped).
    func readResponse(isHead: Bool = false) -> ReadOutcome {
        while true {
            switch ResponseParse.parse(buffer[start...], isHead: isHead, eof: sawEnd != nil) {
            case .response(let r, let used):
                start += used
                if (100..<200).contains(r.status) {
                    interim.append(r.status)
                    continue
                }
                return .response(r)
            case .invalid(let why):
                return .invalid(why)
            case .needMore:
                if sawEnd != nil {
                    // parse(eof: true) only says needMore for an empty buffer.
                    return .ended(sawEnd!, partial: Array(buffer[start...]))
                }
                if let end = fill(), end == .timeout { return .ended(.timeout, partial: Array(buffer[start...])) }
            }
        }
    }

    /// Waits for the end of the stream; returns how it ended and any bytes that came first.
    func readToEnd() -> (StreamEnd, extra: [UInt8]) {
        while true {
            if let end = fill() {
                let extra = Array(buffer[start...])
                start = buffer.count
                return (end, extra)
            }
        }
    }
}

/// Raises RLIMIT_NOFILE to its hard limit (the server child inherits it); returns the soft limit.
@discardableResult
func raiseFileLimit() -> Int {
    var limit = rlimit()
    getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
    if limit.rlim_cur < limit.rlim_max {
        limit.rlim_cur = limit.rlim_max
        setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
        getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
    }
    return Int(limit.rlim_cur)
}

/// `GET path` with a Host field (and `extra` field lines, each ending in CRLF).
func get(_ path: String, _ extra: String = "") -> String { "GET \(path) HTTP/1.1\r\nHost: t\r\n\(extra)\r\n" }

/// The server's `http_connections_active` gauge from GET /metrics (nil if that failed).
func activeConnections(port: UInt16) -> Int? {
    guard let client = try? RawHTTPClient(port: port), client.send(get("/metrics", "Connection: close\r\n")),
          let text = client.readResponse().response?.bodyText else { return nil }
    let line = text.split(separator: "\n").first { $0.hasPrefix("http_connections_active ") }
    return line.flatMap { Double($0.split(separator: " ").last ?? "") }.map { Int($0) }
}
