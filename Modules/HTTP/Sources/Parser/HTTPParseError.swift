/// A request the parser refused, with the status to answer and a stable kind name.
///
/// Every parse error is final for the connection: send the response carrying
/// ``status`` (unless nothing can be sent, e.g. at end of input), then close.
/// The parser stays failed and throws the same error on every later call.
/// See docs/http-parser.md for the RFC 9112/9110 rule behind each kind.
public struct HTTPParseError: Error, Sendable, Hashable, CustomStringConvertible {
    /// What was wrong with the input. ``name`` is stable and suitable as a
    /// metrics label ("parse errors by kind").
    public enum Kind: UInt8, Sendable, Hashable, CaseIterable {
        // Request line.
        /// The method is empty or holds a byte that is not a token character.
        case invalidMethod
        /// The request target holds a forbidden byte or does not fit the method's form.
        case invalidRequestTarget
        /// The request line is not `method SP target SP version`.
        case invalidRequestLine
        /// The version is not `HTTP/DIGIT.DIGIT` exactly.
        case invalidVersion
        /// A well-formed version whose major number is not 1 (e.g. `HTTP/2.0`).
        case unsupportedVersion
        /// The request line exceeds ``HTTPParserLimits/maxRequestLineLength``.
        case requestLineTooLong
        /// More empty lines before the request line than ``HTTPParserLimits/maxLeadingEmptyLines``.
        case tooManyLeadingEmptyLines

        // Line structure.
        /// A line ended with LF not preceded by CR.
        case bareLF
        /// A CR not followed by LF.
        case bareCR

        // Header fields (and trailer fields).
        /// A field line without a colon.
        case invalidFieldLine
        /// The field name is empty or holds a non-token byte.
        case invalidFieldName
        /// Whitespace between the field name and the colon (RFC 9112 §5.1).
        case whitespaceBeforeColon
        /// A field line starting with whitespace: obsolete line folding (RFC 9112 §5.2).
        case obsoleteLineFolding
        /// Whitespace between the request line and the first field (RFC 9112 §2.2).
        case whitespaceBeforeFirstField
        /// A control byte (other than HTAB) or DEL in a field value.
        case invalidFieldValue
        /// One field line exceeds ``HTTPParserLimits/maxFieldLineLength``.
        case fieldLineTooLong
        /// The header section exceeds ``HTTPParserLimits/maxHeaderSectionSize``.
        case headerSectionTooLarge
        /// More than ``HTTPParserLimits/maxFieldCount`` header (or trailer) fields.
        case tooManyFields

        // Semantics of the head.
        /// An HTTP/1.1 request without a Host field.
        case missingHost
        /// More than one Host field line.
        case duplicateHost
        /// A Host value that is not `uri-host [":" port]`.
        case invalidHost
        /// A Content-Length value that is not one non-negative decimal number fitting 63 bits.
        case invalidContentLength
        /// More than one Content-Length field line.
        case duplicateContentLength
        /// Both Content-Length and Transfer-Encoding (RFC 9112 §6.3, request smuggling).
        case contentLengthWithTransferEncoding
        /// A Transfer-Encoding whose final coding is not `chunked`, with `chunked`
        /// twice, with parameters on `chunked` or with empty list elements.
        case invalidTransferEncoding
        /// A transfer coding other than `chunked` before a final `chunked` (501).
        case unsupportedTransferEncoding
        /// Transfer-Encoding in an HTTP/1.0 request (RFC 9112 §6.1).
        case transferEncodingInHTTP10
        /// A Connection value that is not a list of tokens.
        case invalidConnection

        // Chunked body.
        /// A chunk size that is empty, not hexadecimal, longer than 16 digits or above 2^63-1.
        case invalidChunkSize
        /// A chunk extension that is not `;name[=token|quoted-string]`.
        case invalidChunkExtension
        /// Chunk extensions of one request exceed ``HTTPParserLimits/maxChunkExtensionsSize``.
        case chunkExtensionsTooLarge
        /// Chunk data not followed by CRLF.
        case invalidChunkData
        /// The trailer section exceeds ``HTTPParserLimits/maxTrailerSectionSize``.
        case trailerSectionTooLarge
        /// Content-Length, Transfer-Encoding or Host in the trailer section.
        case forbiddenTrailerField

        // End of input.
        /// The input ended inside a request head (``HTTPRequestParser/finish()``).
        case incompleteHead
        /// The input ended inside a request body (``HTTPRequestParser/finish()``).
        case incompleteBody

        /// The HTTP status code a server should answer with.
        public var status: Int {
            switch self {
            case .unsupportedVersion: return 505
            case .requestLineTooLong: return 414
            case .fieldLineTooLong, .headerSectionTooLarge, .tooManyFields, .trailerSectionTooLarge: return 431
            case .unsupportedTransferEncoding: return 501
            case .chunkExtensionsTooLarge: return 413
            default: return 400
            }
        }

        /// A stable identifier for logs and metrics labels, e.g. `"bareLF"`.
        public var name: String {
            switch self {
            case .invalidMethod: return "invalidMethod"
            case .invalidRequestTarget: return "invalidRequestTarget"
            case .invalidRequestLine: return "invalidRequestLine"
            case .invalidVersion: return "invalidVersion"
            case .unsupportedVersion: return "unsupportedVersion"
            case .requestLineTooLong: return "requestLineTooLong"
            case .tooManyLeadingEmptyLines: return "tooManyLeadingEmptyLines"
            case .bareLF: return "bareLF"
            case .bareCR: return "bareCR"
            case .invalidFieldLine: return "invalidFieldLine"
            case .invalidFieldName: return "invalidFieldName"
            case .whitespaceBeforeColon: return "whitespaceBeforeColon"
            case .obsoleteLineFolding: return "obsoleteLineFolding"
            case .whitespaceBeforeFirstField: return "whitespaceBeforeFirstField"
            case .invalidFieldValue: return "invalidFieldValue"
            case .fieldLineTooLong: return "fieldLineTooLong"
            case .headerSectionTooLarge: return "headerSectionTooLarge"
            case .tooManyFields: return "tooManyFields"
            case .missingHost: return "missingHost"
            case .duplicateHost: return "duplicateHost"
            case .invalidHost: return "invalidHost"
            case .invalidContentLength: return "invalidContentLength"
            case .duplicateContentLength: return "duplicateContentLength"
            case .contentLengthWithTransferEncoding: return "contentLengthWithTransferEncoding"
            case .invalidTransferEncoding: return "invalidTransferEncoding"
            case .unsupportedTransferEncoding: return "unsupportedTransferEncoding"
            case .transferEncodingInHTTP10: return "transferEncodingInHTTP10"
            case .invalidConnection: return "invalidConnection"
            case .invalidChunkSize: return "invalidChunkSize"
            case .invalidChunkExtension: return "invalidChunkExtension"
            case .chunkExtensionsTooLarge: return "chunkExtensionsTooLarge"
            case .invalidChunkData: return "invalidChunkData"
            case .trailerSectionTooLarge: return "trailerSectionTooLarge"
            case .forbiddenTrailerField: return "forbiddenTrailerField"
            case .incompleteHead: return "incompleteHead"
            case .incompleteBody: return "incompleteBody"
            }
        }
    }

    /// What was wrong.
    public let kind: Kind

    /// Creates an error of the given kind.
    public init(_ kind: Kind) {
        self.kind = kind
    }

    /// The HTTP status code to answer with (400, 413, 414, 431, 501 or 505).
    public var status: Int { kind.status }

    /// Always `true`: after any parse error the framing of the byte stream is
    /// lost, so the connection must be closed after the error response.
    public var closesConnection: Bool { true }

    /// `"HTTP parse error bareLF (400)"`.
    public var description: String { "HTTP parse error \(kind.name) (\(status))" }
}
