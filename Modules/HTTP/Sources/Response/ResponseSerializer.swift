/// How a response body is delimited (RFC 9112 §6).
public enum ResponseFraming: Sendable, Hashable {
    /// `Content-Length: n`, then exactly `n` body bytes (for a HEAD response:
    /// the length a GET would have, and no bytes).
    case contentLength(Int)
    /// `Transfer-Encoding: chunked`: body written with
    /// ``ResponseSerializer/writeChunk(_:into:)`` and
    /// ``ResponseSerializer/writeLastChunk(trailers:into:)``. HTTP/1.1 requests only.
    case chunked
    /// No framing field. With a 1xx/204/304 status: the response has no
    /// content. Otherwise: if the connection stays open `Content-Length: 0`
    /// is written (an empty body); if it closes, nothing is written and the
    /// body — empty or not — ends when the connection closes (how an HTTP/1.0
    /// client gets a body of unknown length).
    case noBody
}

/// Writes response heads and chunked framing into a byte array (sans-I/O).
///
/// Nothing here allocates when the output array already has the capacity:
/// bytes are appended, integers formatted by hand, fixed text comes from
/// `StaticString`s, and the status lines of the standard statuses are
/// precomputed.
public enum ResponseSerializer {
    /// Appends a response head: `HTTP/1.1 <code> <reason>` CRLF, then
    /// `Server` (when `server` is given and `fields` has none), `Date` (from
    /// `date`, when `fields` has none), the caller's fields in order, the
    /// framing field, the `Connection` field, and the empty line.
    ///
    /// * The response version is always HTTP/1.1 (RFC 9110 §2.5), also to an
    ///   HTTP/1.0 request.
    /// * Framing belongs to `framing`: `Content-Length` and
    ///   `Transfer-Encoding` in `fields` are **skipped**. 1xx, 204 and 304
    ///   responses never get a framing field (RFC 9110 §8.6, RFC 9112 §6.1).
    /// * `.chunked` in answer to an HTTP/1.0 request is a programming error
    ///   (traps): pass `.contentLength(n)`, or `.noBody` with
    ///   `keepAlive: false` and write the body raw until close.
    /// * `Connection: close` when `!keepAlive`; `Connection: keep-alive` when
    ///   `keepAlive` and the request was HTTP/1.0 (RFC 9112 §9.3). A
    ///   `Connection` field in `fields` (e.g. `upgrade` for a 101) is written
    ///   as given, in addition.
    public static func writeHead(status: HTTPStatus, fields: HTTPFields, framing: ResponseFraming,
                                 keepAlive: Bool, requestVersion: HTTPVersion, date: DateCache,
                                 server: StaticString?, into out: inout [UInt8]) {
        writeStatusLine(status, into: &out)
        if let server, fields.special & HTTPFields.Special.server == 0 {
            appendStatic("Server: ", &out); appendStatic(server, &out); appendCRLF(&out)
        }
        if fields.special & HTTPFields.Special.date == 0 {
            appendStatic("Date: ", &out)
            date.withCurrent { out.append(contentsOf: $0) }
            appendCRLF(&out)
        }
        let skipFraming = fields.special & (HTTPFields.Special.contentLength | HTTPFields.Special.transferEncoding) != 0
        for field in fields.storage {
            if skipFraming && HTTPFields.isFramingField(field.name) { continue }
            out.append(contentsOf: field.name.utf8)
            out.append(0x3A); out.append(0x20)
            out.append(contentsOf: field.value.utf8)
            appendCRLF(&out)
        }
        writeFramingAndConnection(status: status, framing: framing, keepAlive: keepAlive,
                                  requestVersion: requestVersion, into: &out)
        appendCRLF(&out)
    }

    /// Appends a head from a ``ResponseHead``; see
    /// ``writeHead(status:fields:framing:keepAlive:requestVersion:date:server:into:)``.
    public static func writeHead(_ head: ResponseHead, framing: ResponseFraming, keepAlive: Bool,
                                 requestVersion: HTTPVersion, date: DateCache, server: StaticString?,
                                 into out: inout [UInt8]) {
        writeHead(status: head.status, fields: head.fields, framing: framing, keepAlive: keepAlive,
                  requestVersion: requestVersion, date: date, server: server, into: &out)
    }

    /// Appends a whole response with a body: status line, `Server` (if
    /// given), `Date`, `Content-Type`, `Content-Length`, the `Connection`
    /// field as in ``writeHead(status:fields:framing:keepAlive:requestVersion:date:server:into:)``,
    /// the empty line and `body` (not for HEAD: use ``writeHead`` with
    /// `.contentLength`). The "Hello, World!" fast path.
    public static func writeSimpleResponse(status: HTTPStatus, contentType: StaticString, body: UnsafeRawBufferPointer,
                                           keepAlive: Bool, requestVersion: HTTPVersion, date: DateCache,
                                           server: StaticString?, into out: inout [UInt8]) {
        writeStatusLine(status, into: &out)
        if let server {
            appendStatic("Server: ", &out); appendStatic(server, &out); appendCRLF(&out)
        }
        appendStatic("Date: ", &out)
        date.withCurrent { out.append(contentsOf: $0) }
        appendCRLF(&out)
        appendStatic("Content-Type: ", &out); appendStatic(contentType, &out); appendCRLF(&out)
        writeFramingAndConnection(status: status, framing: .contentLength(body.count), keepAlive: keepAlive,
                                  requestVersion: requestVersion, into: &out)
        appendCRLF(&out)
        if !status.forbidsContent { out.append(contentsOf: body) }
    }

    /// Appends one chunk: the size in hex, CRLF, the bytes, CRLF. An empty
    /// buffer writes nothing (a zero-size chunk would end the body).
    public static func writeChunk(_ bytes: UnsafeRawBufferPointer, into out: inout [UInt8]) {
        guard bytes.count > 0 else { return }
        writeChunkHeader(size: bytes.count, into: &out)
        out.append(contentsOf: bytes)
        appendCRLF(&out)
    }

    /// Appends the size line of a chunk of `size` (> 0) bytes, for a caller
    /// that writes the data itself (e.g. with `writev`/`sendfile`) and then
    /// ``writeChunkEnd(into:)``.
    public static func writeChunkHeader(size: Int, into out: inout [UInt8]) {
        precondition(size > 0, "ResponseSerializer.writeChunkHeader: a chunk has at least one byte (size 0 is the last chunk)")
        appendHex(size, &out)
        appendCRLF(&out)
    }

    /// Appends the CRLF that ends a chunk's data.
    public static func writeChunkEnd(into out: inout [UInt8]) { appendCRLF(&out) }

    /// Appends the last chunk `0` CRLF, the trailer fields (if any; framing
    /// fields among them are skipped, RFC 9110 §6.5.1) and the final CRLF.
    public static func writeLastChunk(trailers: HTTPFields?, into out: inout [UInt8]) {
        out.append(0x30)
        appendCRLF(&out)
        if let trailers {
            for field in trailers.storage where !HTTPFields.isFramingField(field.name) {
                out.append(contentsOf: field.name.utf8)
                out.append(0x3A); out.append(0x20)
                out.append(contentsOf: field.value.utf8)
                appendCRLF(&out)
            }
        }
        appendCRLF(&out)
    }

    /// Appends `HTTP/1.1 <code> <reason>` CRLF (precomputed for the standard statuses).
    public static func writeStatusLine(_ status: HTTPStatus, into out: inout [UInt8]) {
        if let line = precomputedStatusLine(status.code) {
            // "HTTP/1.1 NNN " is 13 bytes; the reason follows up to the CRLF.
            let matches = line.withUTF8Buffer { b in
                status.reason.utf8.elementsEqual(UnsafeBufferPointer(rebasing: b[13..<(b.count - 2)]))
            }
            if matches { appendStatic(line, &out); return }
        }
        appendStatic("HTTP/1.1 ", &out)
        appendDecimal(status.code, &out)
        out.append(0x20)
        out.append(contentsOf: status.reason.utf8)
        appendCRLF(&out)
    }

    private static func writeFramingAndConnection(status: HTTPStatus, framing: ResponseFraming, keepAlive: Bool,
                                                  requestVersion: HTTPVersion, into out: inout [UInt8]) {
        if !status.forbidsContent {
            switch framing {
            case .contentLength(let n):
                precondition(n >= 0, "ResponseSerializer: negative Content-Length \(n)")
                appendStatic("Content-Length: ", &out); appendDecimal(n, &out); appendCRLF(&out)
            case .chunked:
                precondition(requestVersion.hasHTTP11Semantics,
                             "ResponseSerializer: chunked framing in answer to an HTTP/1.0 request; use .contentLength(n), or .noBody with keepAlive: false and a close-delimited body")
                appendStatic("Transfer-Encoding: chunked\r\n", &out)
            case .noBody:
                if keepAlive { appendStatic("Content-Length: 0\r\n", &out) }
            }
        }
        if !keepAlive {
            appendStatic("Connection: close\r\n", &out)
        } else if !requestVersion.hasHTTP11Semantics {
            appendStatic("Connection: keep-alive\r\n", &out)
        }
    }

    private static func precomputedStatusLine(_ code: Int) -> StaticString? {
        switch code {
        case 100: "HTTP/1.1 100 Continue\r\n"
        case 101: "HTTP/1.1 101 Switching Protocols\r\n"
        case 200: "HTTP/1.1 200 OK\r\n"
        case 201: "HTTP/1.1 201 Created\r\n"
        case 202: "HTTP/1.1 202 Accepted\r\n"
        case 204: "HTTP/1.1 204 No Content\r\n"
        case 206: "HTTP/1.1 206 Partial Content\r\n"
        case 301: "HTTP/1.1 301 Moved Permanently\r\n"
        case 302: "HTTP/1.1 302 Found\r\n"
        case 303: "HTTP/1.1 303 See Other\r\n"
        case 304: "HTTP/1.1 304 Not Modified\r\n"
        case 307: "HTTP/1.1 307 Temporary Redirect\r\n"
        case 308: "HTTP/1.1 308 Permanent Redirect\r\n"
        case 400: "HTTP/1.1 400 Bad Request\r\n"
        case 401: "HTTP/1.1 401 Unauthorized\r\n"
        case 403: "HTTP/1.1 403 Forbidden\r\n"
        case 404: "HTTP/1.1 404 Not Found\r\n"
        case 405: "HTTP/1.1 405 Method Not Allowed\r\n"
        case 408: "HTTP/1.1 408 Request Timeout\r\n"
        case 411: "HTTP/1.1 411 Length Required\r\n"
        case 412: "HTTP/1.1 412 Precondition Failed\r\n"
        case 413: "HTTP/1.1 413 Content Too Large\r\n"
        case 414: "HTTP/1.1 414 URI Too Long\r\n"
        case 416: "HTTP/1.1 416 Range Not Satisfiable\r\n"
        case 417: "HTTP/1.1 417 Expectation Failed\r\n"
        case 429: "HTTP/1.1 429 Too Many Requests\r\n"
        case 431: "HTTP/1.1 431 Request Header Fields Too Large\r\n"
        case 500: "HTTP/1.1 500 Internal Server Error\r\n"
        case 501: "HTTP/1.1 501 Not Implemented\r\n"
        case 502: "HTTP/1.1 502 Bad Gateway\r\n"
        case 503: "HTTP/1.1 503 Service Unavailable\r\n"
        case 504: "HTTP/1.1 504 Gateway Timeout\r\n"
        case 505: "HTTP/1.1 505 HTTP Version Not Supported\r\n"
        default: nil
        }
    }

    @inline(__always)
    static func appendStatic(_ s: StaticString, _ out: inout [UInt8]) {
        s.withUTF8Buffer { out.append(contentsOf: $0) }
    }

    @inline(__always)
    static func appendCRLF(_ out: inout [UInt8]) {
        out.append(0x0D); out.append(0x0A)
    }

    /// Appends the decimal digits of `value` (≥ 0) without allocating.
    static func appendDecimal(_ value: Int, _ out: inout [UInt8]) {
        var digits = 1
        var t = value
        while t >= 10 { t /= 10; digits += 1 }
        let start = out.count
        for _ in 0..<digits { out.append(0x30) }
        out.withUnsafeMutableBufferPointer { p in
            var v = value
            var i = start + digits - 1
            while v > 0 { p[i] = UInt8(truncatingIfNeeded: 0x30 + v % 10); v /= 10; i -= 1 }
        }
    }

    /// Appends the lowercase hex digits of `value` (> 0) without allocating.
    static func appendHex(_ value: Int, _ out: inout [UInt8]) {
        let digits = max(1, (Int.bitWidth - value.leadingZeroBitCount + 3) / 4)
        for k in stride(from: digits - 1, through: 0, by: -1) {
            let nibble = UInt8(truncatingIfNeeded: (value >> (k * 4)) & 0xF)
            out.append(nibble < 10 ? 0x30 + nibble : 0x57 + nibble)
        }
    }
}
