/// A response status: a three-digit code and its reason phrase.
///
/// The reason phrase is validated when the status is created (only HTAB, SP,
/// visible ASCII and obs-text, RFC 9112 §4), so a status can never inject a
/// line break into a response.
public struct HTTPStatus: Hashable, Sendable, CustomStringConvertible {
    /// The status code, 100...999 (RFC 9110 §15: three digits).
    public let code: Int
    /// The reason phrase (may be empty).
    public let reason: String

    /// Creates a status. Traps unless `code` is in 100...999 and `reason`
    /// holds only HTAB, SP, visible ASCII or obs-text (no CR, LF, NUL or other controls).
    public init(code: Int, reason: String) {
        precondition((100...999).contains(code), "HTTPStatus: code \(code) is not a three-digit status code (100...999)")
        for b in reason.utf8 {
            precondition(b == HTAB || (b >= 0x20 && b != 0x7F),
                         "HTTPStatus: reason phrase contains the control byte 0x\(String(b, radix: 16)) (header injection is not allowed)")
        }
        self.code = code
        self.reason = reason
    }

    /// `"200 OK"`.
    public var description: String { reason.isEmpty ? "\(code)" : "\(code) \(reason)" }

    /// Whether a response with this status never has content (1xx, 204, 304 — RFC 9110 §6.4.1).
    @inlinable public var forbidsContent: Bool { code < 200 || code == 204 || code == 304 }

    /// A status with the RFC 9110 reason phrase for `code` (an empty phrase for unregistered codes).
    public static func standard(_ code: Int) -> HTTPStatus {
        HTTPStatus(code: code, reason: standardReason(code) ?? "")
    }

    /// The RFC 9110 (§15) reason phrase for `code`, or nil for a code it does not define.
    public static func standardReason(_ code: Int) -> String? {
        switch code {
        case 100: "Continue"
        case 101: "Switching Protocols"
        case 200: "OK"
        case 201: "Created"
        case 202: "Accepted"
        case 203: "Non-Authoritative Information"
        case 204: "No Content"
        case 205: "Reset Content"
        case 206: "Partial Content"
        case 300: "Multiple Choices"
        case 301: "Moved Permanently"
        case 302: "Found"
        case 303: "See Other"
        case 304: "Not Modified"
        case 305: "Use Proxy"
        case 307: "Temporary Redirect"
        case 308: "Permanent Redirect"
        case 400: "Bad Request"
        case 401: "Unauthorized"
        case 402: "Payment Required"
        case 403: "Forbidden"
        case 404: "Not Found"
        case 405: "Method Not Allowed"
        case 406: "Not Acceptable"
        case 407: "Proxy Authentication Required"
        case 408: "Request Timeout"
        case 409: "Conflict"
        case 410: "Gone"
        case 411: "Length Required"
        case 412: "Precondition Failed"
        case 413: "Content Too Large"
        case 414: "URI Too Long"
        case 415: "Unsupported Media Type"
        case 416: "Range Not Satisfiable"
        case 417: "Expectation Failed"
        case 421: "Misdirected Request"
        case 422: "Unprocessable Content"
        case 426: "Upgrade Required"
        case 428: "Precondition Required"      // RFC 6585
        case 429: "Too Many Requests"          // RFC 6585
        case 431: "Request Header Fields Too Large"  // RFC 6585
        case 500: "Internal Server Error"
        case 501: "Not Implemented"
        case 502: "Bad Gateway"
        case 503: "Service Unavailable"
        case 504: "Gateway Timeout"
        case 505: "HTTP Version Not Supported"
        default: nil
        }
    }

    /// 100 Continue
    public static let `continue` = HTTPStatus(code: 100, reason: "Continue")
    /// 101 Switching Protocols
    public static let switchingProtocols = HTTPStatus(code: 101, reason: "Switching Protocols")
    /// 200 OK
    public static let ok = HTTPStatus(code: 200, reason: "OK")
    /// 201 Created
    public static let created = HTTPStatus(code: 201, reason: "Created")
    /// 202 Accepted
    public static let accepted = HTTPStatus(code: 202, reason: "Accepted")
    /// 204 No Content
    public static let noContent = HTTPStatus(code: 204, reason: "No Content")
    /// 206 Partial Content
    public static let partialContent = HTTPStatus(code: 206, reason: "Partial Content")
    /// 301 Moved Permanently
    public static let movedPermanently = HTTPStatus(code: 301, reason: "Moved Permanently")
    /// 302 Found
    public static let found = HTTPStatus(code: 302, reason: "Found")
    /// 303 See Other
    public static let seeOther = HTTPStatus(code: 303, reason: "See Other")
    /// 304 Not Modified
    public static let notModified = HTTPStatus(code: 304, reason: "Not Modified")
    /// 307 Temporary Redirect
    public static let temporaryRedirect = HTTPStatus(code: 307, reason: "Temporary Redirect")
    /// 308 Permanent Redirect
    public static let permanentRedirect = HTTPStatus(code: 308, reason: "Permanent Redirect")
    /// 400 Bad Request
    public static let badRequest = HTTPStatus(code: 400, reason: "Bad Request")
    /// 401 Unauthorized
    public static let unauthorized = HTTPStatus(code: 401, reason: "Unauthorized")
    /// 403 Forbidden
    public static let forbidden = HTTPStatus(code: 403, reason: "Forbidden")
    /// 404 Not Found
    public static let notFound = HTTPStatus(code: 404, reason: "Not Found")
    /// 405 Method Not Allowed
    public static let methodNotAllowed = HTTPStatus(code: 405, reason: "Method Not Allowed")
    /// 408 Request Timeout
    public static let requestTimeout = HTTPStatus(code: 408, reason: "Request Timeout")
    /// 411 Length Required
    public static let lengthRequired = HTTPStatus(code: 411, reason: "Length Required")
    /// 412 Precondition Failed
    public static let preconditionFailed = HTTPStatus(code: 412, reason: "Precondition Failed")
    /// 413 Content Too Large (RFC 9110 §15.5.14; formerly "Payload Too Large")
    public static let payloadTooLarge = HTTPStatus(code: 413, reason: "Content Too Large")
    /// 414 URI Too Long
    public static let uriTooLong = HTTPStatus(code: 414, reason: "URI Too Long")
    /// 416 Range Not Satisfiable
    public static let rangeNotSatisfiable = HTTPStatus(code: 416, reason: "Range Not Satisfiable")
    /// 417 Expectation Failed
    public static let expectationFailed = HTTPStatus(code: 417, reason: "Expectation Failed")
    /// 429 Too Many Requests (RFC 6585)
    public static let tooManyRequests = HTTPStatus(code: 429, reason: "Too Many Requests")
    /// 431 Request Header Fields Too Large (RFC 6585)
    public static let requestHeaderFieldsTooLarge = HTTPStatus(code: 431, reason: "Request Header Fields Too Large")
    /// 500 Internal Server Error
    public static let internalServerError = HTTPStatus(code: 500, reason: "Internal Server Error")
    /// 501 Not Implemented
    public static let notImplemented = HTTPStatus(code: 501, reason: "Not Implemented")
    /// 502 Bad Gateway
    public static let badGateway = HTTPStatus(code: 502, reason: "Bad Gateway")
    /// 503 Service Unavailable
    public static let serviceUnavailable = HTTPStatus(code: 503, reason: "Service Unavailable")
    /// 504 Gateway Timeout
    public static let gatewayTimeout = HTTPStatus(code: 504, reason: "Gateway Timeout")
    /// 505 HTTP Version Not Supported
    public static let httpVersionNotSupported = HTTPStatus(code: 505, reason: "HTTP Version Not Supported")
}
