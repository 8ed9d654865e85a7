/// Size and count limits the parser enforces while bytes arrive.
///
/// Every limit is checked as soon as it can be exceeded: a request line with
/// no LF is rejected once `maxRequestLineLength + 2` bytes of it have been
/// seen, never buffered unboundedly. Line lengths exclude the CRLF; section
/// sizes include every CRLF, the final empty line's too.
public struct HTTPParserLimits: Sendable, Hashable {
    /// Longest request line, without its CRLF (default 8 KiB). Exceeding it: 414.
    public var maxRequestLineLength: Int
    /// Longest single header or trailer field line, without its CRLF (default 8 KiB). 431.
    public var maxFieldLineLength: Int
    /// Largest header section: every field line with its CRLF plus the final
    /// CRLF, excluding the request line (default 32 KiB). 431.
    public var maxHeaderSectionSize: Int
    /// Most header fields in one request; also applies to trailer fields (default 100). 431.
    public var maxFieldCount: Int
    /// Largest trailer section, counted like the header section (default 8 KiB). 431.
    public var maxTrailerSectionSize: Int
    /// Most chunk-extension bytes (everything after the size digits on each
    /// chunk-size line) accumulated over one request (default 16 KiB). 413.
    public var maxChunkExtensionsSize: Int
    /// Most empty lines (CRLF) ignored before a request line (default 4,
    /// RFC 9112 §2.2 asks for at least one). 400.
    public var maxLeadingEmptyLines: Int

    /// Creates limits; every argument defaults to the documented default.
    public init(
        maxRequestLineLength: Int = 8192,
        maxFieldLineLength: Int = 8192,
        maxHeaderSectionSize: Int = 32768,
        maxFieldCount: Int = 100,
        maxTrailerSectionSize: Int = 8192,
        maxChunkExtensionsSize: Int = 16384,
        maxLeadingEmptyLines: Int = 4
    ) {
        precondition(maxRequestLineLength > 0 && maxFieldLineLength > 0 && maxHeaderSectionSize > 1
            && maxFieldCount >= 0 && maxTrailerSectionSize > 1 && maxChunkExtensionsSize >= 0
            && maxLeadingEmptyLines >= 0, "HTTPParserLimits: limits must be positive")
        // Head views store offsets relative to the head's start in 32 bits.
        precondition(maxRequestLineLength + maxHeaderSectionSize + 2 * maxLeadingEmptyLines < Int(UInt32.max),
                     "HTTPParserLimits: a request head must fit in 4 GiB")
        self.maxRequestLineLength = maxRequestLineLength
        self.maxFieldLineLength = maxFieldLineLength
        self.maxHeaderSectionSize = maxHeaderSectionSize
        self.maxFieldCount = maxFieldCount
        self.maxTrailerSectionSize = maxTrailerSectionSize
        self.maxChunkExtensionsSize = maxChunkExtensionsSize
        self.maxLeadingEmptyLines = maxLeadingEmptyLines
    }

    /// The defaults: 8 KiB request line, 8 KiB field line, 32 KiB header
    /// section, 100 fields, 8 KiB trailers, 16 KiB chunk extensions, 4 empty lines.
    public static var `default`: HTTPParserLimits { HTTPParserLimits() }
}
