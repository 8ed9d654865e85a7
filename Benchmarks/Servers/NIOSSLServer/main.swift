// nio-ssl-server: the SwiftNIO + swift-nio-ssl comparison server for the TLS benchmark
// (Benchmarks/scripts/bench-tls.sh, docs/benchmarks.md "TLS").
//
// nio-http-server (Benchmarks/Servers/NIOHTTPServer) with a NIOSSLServerHandler in front of
// the HTTP/1.1 pipeline: the same ServerBootstrap options, `configureHTTPServerPipeline`
// without pipelining assistance and error handling, a handler that answers every request
// head with a prebuilt "Hello, World!" body and flushes once per read burst, a per-loop
// Date header cache. TLS as the benchmark fixes it for every server: TLS 1.2 only, the one
// suite ECDHE-ECDSA-AES128-GCM-SHA256, the one group P-256 (secp256r1), the certificate
// chain and private key from PEM files, no client certificates. swift-nio-ssl's BoringSSL
// keeps its defaults otherwise: a server-side session cache and session tickets with keys
// it generates itself (so resumed handshakes work, as the benchmark's --resume checks).
//
//   nio-ssl-server --cert CHAIN.pem --key KEY.pem [--host ADDR] [--port N] [--threads N]
//
// Build: cd Benchmarks && swift build -c release --scratch-path ../.build-bench --product nio-ssl-server

import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// The Date header value, formatted once a second per event loop instead of once per response.
private final class DateCache: @unchecked Sendable {  // used only on its own event loop
    private(set) var value: String = DateCache.now()

    init(eventLoop: EventLoop) {
        // The task lives as long as the loop; the cache is per loop and never freed.
        eventLoop.scheduleRepeatedTask(initialDelay: .seconds(1), delay: .seconds(1)) { [unowned self] _ in
            self.value = DateCache.now()
        }
    }

    static func now() -> String {
        var t = time(nil)
        var tm = tm()
        gmtime_r(&t, &tm)
        var buffer = [CChar](repeating: 0, count: 64)
        let n = strftime(&buffer, buffer.count, "%a, %d %b %Y %H:%M:%S GMT", &tm)
        return String(decoding: buffer[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}

private final class HTTPHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let body: ByteBuffer
    private let dateCache: DateCache

    init(body: ByteBuffer, dateCache: DateCache) {
        self.body = body
        self.dateCache = dateCache
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard case .head(let request) = self.unwrapInboundIn(data) else {
            return  // .body and .end: nothing to do for a GET
        }
        var headers = HTTPHeaders()
        headers.add(name: "content-type", value: "text/plain")
        headers.add(name: "content-length", value: "13")
        headers.add(name: "server", value: "SwiftNIO")
        headers.add(name: "date", value: self.dateCache.value)
        let head = HTTPResponseHead(version: request.version, status: .ok, headers: headers)
        context.write(self.wrapOutboundOut(.head(head)), promise: nil)
        context.write(self.wrapOutboundOut(.body(.byteBuffer(self.body))), promise: nil)
        context.write(self.wrapOutboundOut(.end(nil)), promise: nil)
    }

    // Flush once per read burst: pipelined responses go out in one gathering write.
    func channelReadComplete(context: ChannelHandlerContext) {
        context.flush()
        context.fireChannelReadComplete()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        context.close(promise: nil)
    }
}

private func writeLine(_ message: String, to fd: Int32) {
    let bytes = Array((message + "\n").utf8)
    var offset = 0
    while offset < bytes.count {
        let written = bytes.withUnsafeBytes { write(fd, $0.baseAddress! + offset, $0.count - offset) }
        if written < 0 && errno == EINTR { continue }
        guard written > 0 else { return }
        offset += written
    }
}

private func printError(_ message: String) {
    writeLine(message, to: 2)
}

private func usage() -> Never {
    printError(
        """
        usage: nio-ssl-server --cert CHAIN.pem --key KEY.pem [--host ADDR] [--port N] [--threads N]
          --cert FILE   certificate chain, PEM (the server's certificate first)
          --key FILE    the certificate's private key, PEM
          --host ADDR   address to bind (default 127.0.0.1)
          --port N      TCP port to listen on, 1-65535 (default 8443)
          --threads N   event loop threads, 1-1024 (default 1)
        TLS: 1.2 only, ECDHE-ECDSA-AES128-GCM-SHA256, group P-256.
        """
    )
    exit(2)
}

private struct Options {
    var host = "127.0.0.1"
    var port = 8443
    var threads = 1
    var cert = ""
    var key = ""
}

private func parseOptions(_ arguments: [String]) -> Options {
    var options = Options()
    var index = 1
    func value(for flag: String) -> String {
        guard index + 1 < arguments.count else {
            printError("nio-ssl-server: \(flag) needs a value")
            usage()
        }
        index += 1
        return arguments[index]
    }
    while index < arguments.count {
        let flag = arguments[index]
        switch flag {
        case "--host":
            options.host = value(for: flag)
        case "--port":
            let text = value(for: flag)
            guard let port = Int(text), (1...65535).contains(port) else {
                printError("nio-ssl-server: --port must be 1-65535, got '\(text)'")
                usage()
            }
            options.port = port
        case "--threads":
            let text = value(for: flag)
            guard let threads = Int(text), (1...1024).contains(threads) else {
                printError("nio-ssl-server: --threads must be 1-1024, got '\(text)'")
                usage()
            }
            options.threads = threads
        case "--cert":
            options.cert = value(for: flag)
        case "--key":
            options.key = value(for: flag)
        case "-h", "--help":
            usage()
        default:
            printError("nio-ssl-server: unknown argument '\(flag)'")
            usage()
        }
        index += 1
    }
    if options.cert.isEmpty || options.key.isEmpty {
        printError("nio-ssl-server: --cert and --key are required")
        usage()
    }
    return options
}

private let options = parseOptions(CommandLine.arguments)

private let sslContext: NIOSSLContext
do {
    let chain = try NIOSSLCertificate.fromPEMFile(options.cert)
    guard !chain.isEmpty else {
        printError("nio-ssl-server: no certificate in \(options.cert)")
        exit(1)
    }
    let key = try NIOSSLPrivateKey(file: options.key, format: .pem)
    var configuration = TLSConfiguration.makeServerConfiguration(
        certificateChain: chain.map { .certificate($0) },
        privateKey: .privateKey(key)
    )
    configuration.minimumTLSVersion = .tlsv12
    configuration.maximumTLSVersion = .tlsv12
    configuration.cipherSuites = "ECDHE-ECDSA-AES128-GCM-SHA256"
    configuration.curves = [.secp256r1]
    sslContext = try NIOSSLContext(configuration: configuration)
} catch {
    printError("nio-ssl-server: TLS configuration (--cert \(options.cert), --key \(options.key)): \(error)")
    exit(1)
}

private let group = MultiThreadedEventLoopGroup(numberOfThreads: options.threads)
private let helloWorld = ByteBuffer(string: "Hello, World!")
private let bootstrap = ServerBootstrap(group: group)
    .serverChannelOption(.backlog, value: 8192)
    .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
    .childChannelInitializer { channel in
        channel.eventLoop.makeCompletedFuture {
            try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: sslContext))
            try channel.pipeline.syncOperations.configureHTTPServerPipeline(
                withPipeliningAssistance: false,
                withErrorHandling: false
            )
            try channel.pipeline.syncOperations.addHandler(
                HTTPHandler(body: helloWorld, dateCache: dateCache(for: channel.eventLoop))
            )
        }
    }
    .childChannelOption(.socketOption(.so_reuseaddr), value: 1)
    .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
    .childChannelOption(.maxMessagesPerRead, value: 16)

/// One DateCache per event loop, created on that loop the first time a channel of it needs one.
private enum DateCaches {
    static let perThread = ThreadSpecificVariable<DateCache>()
}
private func dateCache(for eventLoop: EventLoop) -> DateCache {
    if let cache = DateCaches.perThread.currentValue { return cache }
    let cache = DateCache(eventLoop: eventLoop)
    DateCaches.perThread.currentValue = cache
    return cache
}

private let channel: Channel
do {
    channel = try bootstrap.bind(host: options.host, port: options.port).wait()
} catch {
    printError("nio-ssl-server: cannot listen on \(options.host):\(options.port): \(error)")
    try? group.syncShutdownGracefully()
    exit(1)
}

private let boundAddress = channel.localAddress.map { "\($0)" } ?? "\(options.host):\(options.port)"
writeLine("nio-ssl-server listening on \(boundAddress) with \(options.threads) thread(s), TLS 1.2 ECDHE-ECDSA-AES128-GCM-SHA256 P-256", to: 1)

try channel.closeFuture.wait()
try group.syncShutdownGracefully()
