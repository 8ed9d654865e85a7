// The transfer: connect (each address in turn), TLS handshake (verified), send, receive,
// and every failure mapped to curl's exit code with one line of reason.
import StrataEvents
import StrataSched
import StrataSockets
import StrataTLS

/// A plaintext or TLS byte stream.
enum Connection: Sendable {
    case plain(TCPConnection)
    case tls(TLSConnection)

    /// The next bytes; nil at a clean end (TCP EOF for http, close_notify for https).
    func read() async throws -> [UInt8]? {
        switch self {
        case .plain(let c):
            let bytes = try await c.read(maximumCount: 64 * 1024)
            return bytes.isEmpty ? nil : bytes
        case .tls(let c):
            return try await c.read()
        }
    }

    func write(_ bytes: [UInt8]) async throws {
        switch self {
        case .plain(let c): try await c.write(bytes)
        case .tls(let c): try await c.write(bytes)
        }
    }

    func close() async {
        switch self {
        case .plain(let c): await c.close()
        case .tls(let c): await c.close()
        }
    }
}

/// "10 s", "0.5 s".
func formatSeconds(_ d: Duration) -> String {
    let (s, attos) = d.components
    if attos == 0 { return "\(s) s" }
    let ms = Int64(attos / 1_000_000_000_000_000)
    var frac = String(ms)
    while frac.count < 3 { frac = "0" + frac }
    while frac.hasSuffix("0") { frac.removeLast() }
    return frac.isEmpty ? "\(s) s" : "\(s).\(frac) s"
}

/// One fetch, from the parsed options to the exit status.
final class Fetcher {
    let options: Options
    let urlText: String
    let loop: Loop
    let output: Output
    private var maxDeadline: MonotonicInstant?
    private var parser = ResponseParser(requestMethod: "GET")

    init(options: Options, loop: Loop, stdoutClosed: Bool) {
        self.options = options
        self.urlText = options.url ?? ""
        self.loop = loop
        self.output = Output(path: options.output, stdoutClosed: stdoutClosed)
    }

    private func verbose(_ line: @autoclosure () -> String) {
        if options.verbose { printError(line()) }
    }

    /// Runs the fetch and returns the exit status; on failure the one line is on stderr.
    func run() async -> Int32 {
        do {
            try await fetch()
            return Exit.ok
        } catch let failure as FetchFailure {
            try? output.close()
            report(failure)
            return failure.code
        } catch {
            try? output.close()
            report(FetchFailure(Exit.receiveError, "\(error)"))
            return Exit.receiveError
        }
    }

    private func report(_ failure: FetchFailure) {
        let reason = String(failure.reason.map { $0 == "\n" || $0 == "\r" ? " " : $0 })
        printError("strata-fetch: \(urlText): \(reason)")
    }

    /// The --max-time failure if its deadline has passed.
    private func maxTimeExpired() -> FetchFailure? {
        guard let maxDeadline, MonotonicInstant.now >= maxDeadline, let maxTime = options.maxTime else { return nil }
        var what = "operation timed out after \(formatSeconds(maxTime)) (--max-time)"
        if case .contentLength(let n) = parser.framing {
            what += " with \(parser.bodyBytes) of \(n) body bytes received"
        } else if parser.framing != nil {
            what += " with \(parser.bodyBytes) body bytes received"
        }
        return FetchFailure(Exit.timedOut, what)
    }

    private func fetch() async throws {
        let url = try FetchURL(parsing: urlText)
        // Local files first, so a bad path is reported before any traffic.
        let tlsConfiguration = url.scheme == .https ? try makeTLSConfiguration() : nil
        let request = try buildRequest(url: url, options: options, body: try requestBody(options.data))
        parser = ResponseParser(requestMethod: request.method)
        let (addresses, source) = try addresses(for: url, resolve: options.resolve)
        verbose("* \(url.host):\(url.port) -> \(addresses.map(\.description).joined(separator: ", ")) (\(source))")

        if let maxTime = options.maxTime {
            let deadline = MonotonicInstant.now.advanced(by: maxTime)
            maxDeadline = deadline
            do {
                try await withDeadline(deadline) {
                    try await transfer(url, tlsConfiguration, request, addresses)
                }
            } catch let e as SchedError where e.code == .timedOut {
                throw maxTimeExpired() ?? FetchFailure(Exit.timedOut, "timed out: \(e)")
            }
        } else {
            try await transfer(url, tlsConfiguration, request, addresses)
        }
    }

    /// The client configuration: system bundle or --cacert/--capath, --cert/--key, ALPN
    /// http/1.1, the handshake bounded by --connect-timeout. Verification is not optional.
    private func makeTLSConfiguration() throws(FetchFailure) -> TLSConfiguration {
        if options.cacert != nil && options.capath != nil {
            throw FetchFailure(Exit.usage, "give --cacert or --capath, not both")
        }
        let roots: TLSTrustRoots = if let f = options.cacert { .file(f) } else if let d = options.capath { .directory(d) } else { .systemDefault }
        let identity = options.cert.map { TLSIdentity.pemFiles(certificateChain: $0, privateKey: options.key ?? $0) }
        var tlsOptions = TLSOptions()
        tlsOptions.handshakeTimeout = options.connectTimeout
        do {
            return try TLSConfiguration.client(trustRoots: roots, identity: identity, alpn: ["http/1.1"], options: tlsOptions)
        } catch {
            // Which file is at fault: the CA certificates load on their own, or they do not.
            if identity != nil, (try? TLSConfiguration.client(trustRoots: roots, alpn: ["http/1.1"], options: tlsOptions)) != nil {
                throw FetchFailure(Exit.clientCertificate, "problem with the client certificate (--cert/--key): \(error)")
            }
            throw FetchFailure(Exit.caCertificate, "problem with the CA certificates (\(options.cacert != nil ? "--cacert" : options.capath != nil ? "--capath" : "system bundle")): \(error)")
        }
    }

    private func transfer(_ url: FetchURL, _ tlsConfiguration: TLSConfiguration?, _ request: Request,
                          _ addresses: [SocketAddress]) async throws {
        let (tcp, address) = try await connect(url, addresses)
        verbose("* Connected to \(address) for \(url.hostHeader)")

        let connection: Connection
        if let tlsConfiguration {
            connection = .tls(try await handshake(tcp, url, tlsConfiguration))
        } else {
            connection = .plain(tcp)
        }
        do {
            try await exchange(connection, request)
        } catch {
            await connection.close()
            throw error
        }
        await connection.close()
        try output.finish()
    }

    // MARK: Connect

    /// Tries each address in turn; --connect-timeout bounds them all, each attempt getting
    /// its share of what is left.
    private func connect(_ url: FetchURL, _ addresses: [SocketAddress]) async throws -> (TCPConnection, SocketAddress) {
        guard !addresses.isEmpty else {
            throw FetchFailure(Exit.couldNotResolve, "could not resolve host \(url.host): no address")
        }
        let deadline = MonotonicInstant.now.advanced(by: options.connectTimeout)
        var failures: [String] = []
        var timedOut = false
        for (k, address) in addresses.enumerated() {
            let now = MonotonicInstant.now
            guard now < deadline else { timedOut = true; break }
            let share = now.duration(to: deadline) / (addresses.count - k)
            verbose("*   Trying \(address)...")
            do {
                let tcp = try await TCPConnection.connect(to: address, on: loop, timeout: share)
                return (tcp, address)
            } catch let e as SchedError where e.code == .timedOut {
                if let f = maxTimeExpired() { throw f }
                timedOut = true
                failures.append("\(address): timed out")
            } catch let e as SchedError {
                failures.append(e.message.hasPrefix("connect ") ? String(e.message.dropFirst(8)) : e.message)
            } catch {
                failures.append("\(address): \(error)")
            }
        }
        let host = if case .ipv6 = url.hostKind { "[\(url.host)]" } else { url.host }
        let target = "\(host) port \(url.port)"
        if timedOut && MonotonicInstant.now >= deadline {
            throw FetchFailure(Exit.timedOut, "connection to \(target) timed out after \(formatSeconds(options.connectTimeout)) (--connect-timeout)\(failures.isEmpty ? "" : ": " + failures.joined(separator: "; "))")
        }
        throw FetchFailure(Exit.couldNotConnect, "could not connect to \(target): \(failures.joined(separator: "; "))")
    }

    // MARK: TLS

    private func handshake(_ tcp: TCPConnection, _ url: FetchURL, _ configuration: TLSConfiguration) async throws -> TLSConnection {
        let tls: TLSConnection
        do {
            tls = try await TLSConnection.connect(over: tcp, serverName: url.serverName, configuration: configuration)
        } catch let e as TLSError {
            switch e.kind {
            case .verification:
                let why = e.reasons.isEmpty ? e.description : e.reasons.joined(separator: "; ")
                throw FetchFailure(Exit.peerVerification, "certificate verification failed: \(why)")
            case .handshakeTimeout:
                throw FetchFailure(Exit.tlsHandshake, "TLS handshake timed out: \(e.description) (--connect-timeout)")
            default:
                let text = e.description.hasPrefix("TLS handshake failed") ? e.description : "TLS handshake failed: \(e.description)"
                throw FetchFailure(Exit.tlsHandshake, text)
            }
        } catch let e as SchedError {
            if e.code == .timedOut, let f = maxTimeExpired() { throw f }
            throw FetchFailure(Exit.tlsHandshake, "TLS handshake failed: \(e.message)")
        }
        verbose("* TLS: \(tls.protocolVersion), \(tls.cipherSuite ?? "?"), ALPN \(tls.negotiatedALPN ?? "none"), \(tls.isResumed ? "resumed session" : "new session")")
        verbose("* Server certificate: \(tls.peerCertificateSubject ?? "?") — verified: chain to a trusted root, validity dates, name \(url.serverName) in subjectAltName, key usage, signature and key-size policy")
        return tls
    }

    // MARK: Request and response

    private func exchange(_ connection: Connection, _ request: Request) async throws {
        for line in request.headLines { verbose("> \(line)") }
        verbose(">")
        if let body = request.body { verbose("* sending \(body.count) body bytes") }

        var sendFailure: FetchFailure?
        do {
            try await connection.write(request.bytes)
        } catch {
            if let f = maxTimeExpired() { throw f }
            // The server may have answered (and closed) before reading everything; read
            // what it sent before reporting the send failure.
            sendFailure = FetchFailure(Exit.sendError, "failed sending the request: \(describe(error))")
        }

        while !parser.isComplete {
            let chunk: [UInt8]?
            do {
                chunk = try await connection.read()
            } catch let e as TLSError where e.kind == .truncated {
                if let sendFailure, parser.bytesReceived == 0 { throw sendFailure }
                throw truncation(parser.missingWithoutCloseNotify)
            } catch {
                if let f = maxTimeExpired() { throw f }
                if let sendFailure, parser.bytesReceived == 0 { throw sendFailure }
                if let e = error as? TLSError {
                    throw FetchFailure(Exit.receiveError, "failure receiving data: TLS: \(e.description)")
                }
                throw FetchFailure(Exit.receiveError, "failure receiving data: \(describe(error))")
            }
            guard let chunk else {
                if let missing = parser.endOfStream() {
                    if let sendFailure, parser.bytesReceived == 0 { throw sendFailure }
                    throw truncation(missing)
                }
                break
            }
            try parser.feed(chunk) { event throws in try handle(event) }
        }
        if let framing = parser.framing {
            verbose("* response complete: \(parser.bodyBytes) body bytes (\(framing))")
        }
    }

    private func truncation(_ missing: String) -> FetchFailure {
        FetchFailure(parser.bytesReceived == 0 ? Exit.emptyReply : Exit.partialFile, "response truncated: \(missing)")
    }

    private func handle(_ event: ResponseEvent) throws {
        switch event {
        case .interim(let head):
            logHead(head)
            if options.include { try output.write(head.raw[...]) }
        case .head(let head, _):
            logHead(head)
            if options.fail && head.status >= 400 {
                throw FetchFailure(Exit.httpError, "the server answered \(head.statusLine) (--fail)")
            }
            if options.include { try output.write(head.raw[...]) }
        case .body(let bytes):
            try output.write(bytes)
        }
    }

    private func logHead(_ head: ResponseHead) {
        guard options.verbose else { return }
        verbose("< \(head.statusLine)")
        for f in head.fields { verbose("< \(f.name): \(f.value)") }
        verbose("<")
    }

    private func describe(_ error: any Error) -> String {
        if let e = error as? SchedError { return e.message }
        return "\(error)"
    }
}

extension ResponseParser {
    /// What is missing when a TLS stream ends without close_notify.
    var missingWithoutCloseNotify: String {
        switch state {
        case .untilClose:
            return "the server closed the connection without TLS close_notify after \(bodyBytes) body bytes (a body delimited by the connection's end is complete only with close_notify)"
        case .head where bytesReceived == 0:
            return "empty reply from server (the connection closed without TLS close_notify before any response byte)"
        default:
            return "\(missing); the connection closed without TLS close_notify"
        }
    }
}
