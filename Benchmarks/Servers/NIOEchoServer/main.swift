// nio-echo-server: the SwiftNIO comparison server for the echo benchmark
// (Benchmarks/scripts/bench-echo.sh, docs/benchmarks.md "Echo (Events)").
//
// Written the way SwiftNIO's own example (Sources/NIOEchoServer/main.swift in
// swift-nio 2.101) is: a ServerBootstrap, a ChannelInboundHandler that writes
// every read back and flushes on channelReadComplete, the example's
// BackPressureHandler, backlog 256, SO_REUSEADDR, maxMessagesPerRead 16 and the
// adaptive receive allocator. Differences from the example, all for the
// benchmark: TCP_NODELAY on accepted channels, the thread count is a flag
// (default 1, so it is comparable with one-loop servers pinned to one CPU), and
// it binds an IPv4 host (default 127.0.0.1, where the load generator connects).
//
//   nio-echo-server [--host ADDR] [--port N] [--threads N]
//
// Build: cd Benchmarks && swift build -c release --scratch-path ../.build-bench --product nio-echo-server

import NIOCore
import NIOPosix

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

private final class EchoHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        // No promise: we do not need to know when the write completes, and nil saves an allocation.
        context.write(data, promise: nil)
    }

    // Flush once per read burst, so several pending buffers go out in one gathering write.
    func channelReadComplete(context: ChannelHandlerContext) {
        context.flush()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        // A peer resetting its connection is normal at the end of a load run; say nothing then.
        if let ioError = error as? IOError, ioError.errnoCode == ECONNRESET || ioError.errnoCode == EPIPE {
            context.close(promise: nil)
            return
        }
        printError("nio-echo-server: connection error: \(error)")
        context.close(promise: nil)
    }
}

/// Writes one line straight to a file descriptor: unbuffered, so it shows up at once even when
/// the output is a pipe or a log file, and free of the C `stdout`/`stderr` globals, which Swift 6
/// rejects as shared mutable state.
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
        usage: nio-echo-server [--host ADDR] [--port N] [--threads N]
          --host ADDR   address to bind (default 127.0.0.1)
          --port N      TCP port to listen on, 1-65535 (default 9999)
          --threads N   event loop threads, 1-1024 (default 1)
        """
    )
    exit(2)
}

private struct Options {
    var host = "127.0.0.1"
    var port = 9999
    var threads = 1
}

private func parseOptions(_ arguments: [String]) -> Options {
    var options = Options()
    var index = 1
    func value(for flag: String) -> String {
        guard index + 1 < arguments.count else {
            printError("nio-echo-server: \(flag) needs a value")
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
                printError("nio-echo-server: --port must be 1-65535, got '\(text)'")
                usage()
            }
            options.port = port
        case "--threads":
            let text = value(for: flag)
            guard let threads = Int(text), (1...1024).contains(threads) else {
                printError("nio-echo-server: --threads must be 1-1024, got '\(text)'")
                usage()
            }
            options.threads = threads
        case "-h", "--help":
            usage()
        default:
            printError("nio-echo-server: unknown argument '\(flag)'")
            usage()
        }
        index += 1
    }
    return options
}

private let options = parseOptions(CommandLine.arguments)

private let group = MultiThreadedEventLoopGroup(numberOfThreads: options.threads)
private let bootstrap = ServerBootstrap(group: group)
    // Backlog and SO_REUSEADDR for the listening socket.
    .serverChannelOption(.backlog, value: 256)
    .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
    // The handlers of every accepted channel.
    .childChannelInitializer { channel in
        channel.eventLoop.makeCompletedFuture {
            // Do not read faster than we can write.
            try channel.pipeline.syncOperations.addHandler(BackPressureHandler())
            try channel.pipeline.syncOperations.addHandler(EchoHandler())
        }
    }
    // Options of the accepted channels.
    .childChannelOption(.socketOption(.so_reuseaddr), value: 1)
    .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
    .childChannelOption(.maxMessagesPerRead, value: 16)
    .childChannelOption(.recvAllocator, value: AdaptiveRecvByteBufferAllocator())

private let channel: Channel
do {
    channel = try bootstrap.bind(host: options.host, port: options.port).wait()
} catch {
    printError("nio-echo-server: cannot listen on \(options.host):\(options.port): \(error)")
    try? group.syncShutdownGracefully()
    exit(1)
}

private let boundAddress = channel.localAddress.map { "\($0)" } ?? "\(options.host):\(options.port)"
writeLine("nio-echo-server listening on \(boundAddress) with \(options.threads) thread(s)", to: 1)

// Runs until the process is signalled: the server channel is never closed.
try channel.closeFuture.wait()
try group.syncShutdownGracefully()
