#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Why a ``StaticFiles`` root is unusable.
public enum StaticFilesError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The root does not exist or cannot be resolved (`errno` from realpath).
    case rootNotFound(path: String, errno: Int32)
    /// The root exists but is not a directory.
    case rootNotADirectory(path: String)

    /// A message naming the path and the fix.
    public var description: String {
        switch self {
        case .rootNotFound(let p, let e):
            "static files root \(String(reflecting: p)) cannot be resolved (errno \(e)): create the directory or pass an existing one"
        case .rootNotADirectory(let p):
            "static files root \(String(reflecting: p)) is not a directory: pass the directory that holds the files"
        }
    }
}

/// What a resolved regular file is: everything a response head needs.
public struct StaticFileInfo: Sendable, Hashable {
    /// The absolute, symlink-free path (inside the root).
    public var path: String
    /// The size in bytes.
    public var size: Int64
    /// Last modification, seconds since the epoch (for `Last-Modified`).
    public var modifiedEpochSeconds: Int
    /// The strong entity-tag, quotes included (for `ETag`).
    public var etag: String
    /// The media type from the extension (for `Content-Type`).
    public var contentType: String

    /// Creates the description of a file.
    public init(path: String, size: Int64, modifiedEpochSeconds: Int, etag: String, contentType: String) {
        self.path = path
        self.size = size
        self.modifiedEpochSeconds = modifiedEpochSeconds
        self.etag = etag
        self.contentType = contentType
    }
}

/// The outcome of ``StaticFiles/resolve(_:)``.
public enum StaticFileResolution: Sendable, Hashable {
    /// A readable regular file inside the root (also a directory's
    /// `index.html`).
    case file(path: String, size: Int64, modifiedEpochSeconds: Int, etag: String, contentType: String)
    /// Nothing there (404).
    case notFound
    /// Refused (403): a dot segment, an encoded `/` or NUL, a hidden file,
    /// a symlink resolving outside the root, an unreadable or special file.
    case forbidden
    /// A directory without `index.html` (no listings are generated: 403 or 404).
    case directory

    /// The file's description when this is `.file`.
    public var fileInfo: StaticFileInfo? {
        if case let .file(path, size, mtime, etag, type) = self {
            return StaticFileInfo(path: path, size: size, modifiedEpochSeconds: mtime, etag: etag, contentType: type)
        }
        return nil
    }
}

/// What to send for a GET or HEAD of a static file, after conditionals and Range.
public enum StaticFileDecision: Sendable, Hashable {
    /// 304 Not Modified (If-None-Match matched, or not modified since If-Modified-Since).
    case notModified
    /// 200 with the whole file.
    case full
    /// 206 with `length` bytes from `offset` (`Content-Range: bytes first-last/size`).
    case partial(offset: Int64, length: Int64)
    /// 416 with `Content-Range: bytes */size`.
    case rangeNotSatisfiable(Int64)
}

/// Maps request paths to files under a root directory, safely.
///
/// * The request path is the raw path (a query is ignored); each segment is
///   percent-decoded. Empty segments are skipped. A decoded segment that is
///   `.` or `..`, or contains `/` or NUL, is `.forbidden`; so is a segment
///   starting with `.` (hidden files such as `.env`, `.git`) unless
///   `allowHiddenFiles`.
/// * The joined path goes through `realpath(3)`; a result outside the root
///   (a symlink pointing out) is `.forbidden`. Symlinks inside the root are
///   followed.
/// * A directory serves its `index.html` when present (with or without a
///   trailing slash in the request: relative links in such a page resolve
///   against the parent unless the URL ends in `/`); otherwise `.directory`.
/// * ETags are strong: `"<mtime seconds hex>.<mtime nanoseconds hex>-<size hex>"`.
public struct StaticFiles: Sendable {
    /// The root, absolute and symlink-free.
    public let root: String
    /// Whether segments starting with `.` may be served.
    public let allowHiddenFiles: Bool

    /// Opens a root directory. Throws ``StaticFilesError`` if it does not
    /// exist or is not a directory.
    public init(root: String, allowHiddenFiles: Bool = false) throws(StaticFilesError) {
        guard let resolved = Self.realPath(root) else { throw .rootNotFound(path: root, errno: errno) }
        guard let st = Self.fileStat(resolved), st.isDirectory else { throw .rootNotADirectory(path: root) }
        self.root = resolved
        self.allowHiddenFiles = allowHiddenFiles
    }

    /// Resolves a raw request path (e.g. `/css/site%20v2.css`).
    public func resolve(_ requestPath: String) -> StaticFileResolution {
        var path = Substring(requestPath)
        if let q = path.firstIndex(where: { $0 == "?" || $0 == "#" }) { path = path[..<q] }
        guard path.first == "/" else { return .notFound }
        var relative = ""
        for raw in path.split(separator: "/", omittingEmptySubsequences: true) {
            guard let segment = try? URLEncoded.decodeComponent(raw, plusAsSpace: false) else { return .forbidden }
            if segment == "." || segment == ".." || segment.utf8.contains(0x2F) || segment.utf8.contains(0) {
                return .forbidden
            }
            if !allowHiddenFiles && segment.utf8.first == 0x2E { return .forbidden }
            relative += "/" + segment
        }
        let full = root == "/" ? (relative.isEmpty ? "/" : relative) : root + relative
        guard let resolved = Self.realPath(full) else {
            switch errno {
            case EACCES, ELOOP: return .forbidden
            default: return .notFound
            }
        }
        guard isInsideRoot(resolved) else { return .forbidden }
        guard let st = Self.fileStat(resolved) else { return .notFound }
        if st.isDirectory {
            let index = (resolved == "/" ? "" : resolved) + "/index.html"
            guard let indexResolved = Self.realPath(index) else { return .directory }
            guard isInsideRoot(indexResolved) else { return .forbidden }
            guard let ist = Self.fileStat(indexResolved), ist.isRegular else { return .directory }
            return fileResolution(indexResolved, ist)
        }
        guard st.isRegular else { return .forbidden }
        return fileResolution(resolved, st)
    }

    private func fileResolution(_ path: String, _ st: FileStat) -> StaticFileResolution {
        guard access(path, R_OK) == 0 else { return .forbidden }
        let etag = "\"\(String(st.mtimeSeconds, radix: 16)).\(String(st.mtimeNanoseconds, radix: 16))-\(String(st.size, radix: 16))\""
        return .file(path: path, size: st.size, modifiedEpochSeconds: st.mtimeSeconds, etag: etag,
                     contentType: Self.contentType(forPath: path))
    }

    private func isInsideRoot(_ resolved: String) -> Bool {
        if root == "/" { return true }
        if resolved == root { return true }
        return resolved.hasPrefix(root) && resolved.utf8.dropFirst(root.utf8.count).first == 0x2F
    }

    struct FileStat {
        var mode: UInt32
        var size: Int64
        var mtimeSeconds: Int
        var mtimeNanoseconds: Int
        var isDirectory: Bool { mode & UInt32(S_IFMT) == UInt32(S_IFDIR) }
        var isRegular: Bool { mode & UInt32(S_IFMT) == UInt32(S_IFREG) }
    }

    static func fileStat(_ path: String) -> FileStat? {
        var st = stat()
        guard stat(path, &st) == 0 else { return nil }
        #if canImport(Darwin)
        let mtime = st.st_mtimespec
        #else
        let mtime = st.st_mtim
        #endif
        return FileStat(mode: UInt32(st.st_mode), size: Int64(st.st_size),
                        mtimeSeconds: Int(mtime.tv_sec), mtimeNanoseconds: Int(mtime.tv_nsec))
    }

    static func realPath(_ path: String) -> String? {
        guard let p = realpath(path, nil) else { return nil }
        defer { free(p) }
        return String(cString: p)
    }

    // MARK: Conditional requests and ranges

    /// Decides between 304, 200, 206 and 416 for a GET or HEAD of `file`
    /// (RFC 9110 §13.2.2 order; field values as received, nil when absent).
    ///
    /// * `If-None-Match` (weak comparison, `*` matches) → 304; when present,
    ///   `If-Modified-Since` is ignored. `If-Modified-Since` (a valid
    ///   HTTP-date, any of the three formats) → 304 when the file's mtime is
    ///   not later. Conditionals apply to GET and HEAD only.
    /// * `Range` only for GET (§14.2), unit `bytes` (case-insensitive):
    ///   `first-last`, `first-` and `-suffix`. One range → 206 (last clamped
    ///   to the end; a suffix longer than the file → the whole file as 206).
    ///   **More than one range → 200 with the whole file** (no
    ///   multipart/byteranges). An unparsable value or another unit → 200.
    ///   Unsatisfiable (first ≥ size, or `-0`) → 416. An empty file with a
    ///   non-zero suffix → 200.
    /// * `If-Range`: an entity-tag must match strongly (a weak tag never
    ///   does), a date must equal the mtime; otherwise the Range is ignored (200).
    public static func evaluate(method: HTTPMethod, ifNoneMatch: String?, ifModifiedSince: String?,
                                range: String?, ifRange: String?, file: StaticFileInfo) -> StaticFileDecision {
        guard method == .get || method == .head else { return .full }
        if let inm = ifNoneMatch {
            if entityTagListMatches(inm, etag: file.etag) { return .notModified }
        } else if let ims = ifModifiedSince, let since = DateCache.parse(ims), file.modifiedEpochSeconds <= since {
            return .notModified
        }
        guard method == .get, let range else { return .full }
        if let ifRange {
            let v = trimOWS(Substring(ifRange))
            if v.hasPrefix("\"") || v.hasPrefix("W/") {
                guard !v.hasPrefix("W/"), v == file.etag[...] else { return .full }
            } else {
                guard let date = DateCache.parse(v), date == file.modifiedEpochSeconds else { return .full }
            }
        }
        return evaluateRange(range, size: file.size)
    }

    /// ``evaluate(method:ifNoneMatch:ifModifiedSince:range:ifRange:file:)`` for a resolution (`.full` unless `.file`).
    public static func evaluate(method: HTTPMethod, ifNoneMatch: String?, ifModifiedSince: String?,
                                range: String?, ifRange: String?, resolution: StaticFileResolution) -> StaticFileDecision {
        guard let info = resolution.fileInfo else { return .full }
        return evaluate(method: method, ifNoneMatch: ifNoneMatch, ifModifiedSince: ifModifiedSince,
                        range: range, ifRange: ifRange, file: info)
    }

    /// The `Content-Range` value of a 206 (`bytes 0-499/10000`).
    public static func contentRange(offset: Int64, length: Int64, size: Int64) -> String {
        "bytes \(offset)-\(offset + length - 1)/\(size)"
    }

    /// The `Content-Range` value of a 416 (`bytes */10000`).
    public static func unsatisfiedContentRange(size: Int64) -> String { "bytes */\(size)" }

    static func evaluateRange(_ value: String, size: Int64) -> StaticFileDecision {
        let v = trimOWS(Substring(value))
        guard let eq = v.firstIndex(of: "="), v[..<eq].lowercased() == "bytes" else { return .full }
        let specs = v[v.index(after: eq)...].split(separator: ",", omittingEmptySubsequences: false)
            .map { trimOWS($0) }.filter { !$0.isEmpty }
        guard specs.count == 1, let dash = specs[0].firstIndex(of: "-") else { return .full }
        let firstText = specs[0][..<dash], lastText = specs[0][specs[0].index(after: dash)...]
        if firstText.isEmpty {
            guard let suffix = parseDigits(lastText) else { return .full }
            if suffix == 0 { return .rangeNotSatisfiable(size) }
            if size == 0 { return .full }
            let length = min(suffix, size)
            return .partial(offset: size - length, length: length)
        }
        guard let first = parseDigits(firstText) else { return .full }
        var last = size - 1
        if !lastText.isEmpty {
            guard let l = parseDigits(lastText) else { return .full }
            guard l >= first else { return .full }   // invalid range-spec: ignore the field
            last = min(l, size - 1)
        }
        guard first < size else { return .rangeNotSatisfiable(size) }
        return .partial(offset: first, length: last - first + 1)
    }

    /// 1*DIGIT, saturating at Int64.max; nil if empty or not digits.
    private static func parseDigits(_ s: Substring) -> Int64? {
        guard !s.isEmpty else { return nil }
        var v: Int64 = 0
        for b in s.utf8 {
            guard b &- 0x30 < 10 else { return nil }
            let (m, o1) = v.multipliedReportingOverflow(by: 10)
            let (a, o2) = m.addingReportingOverflow(Int64(b - 0x30))
            v = (o1 || o2) ? Int64.max : a
        }
        return v
    }

    private static func trimOWS(_ s: Substring) -> Substring {
        var s = s
        while let f = s.first, f == " " || f == "\t" { s.removeFirst() }
        while let l = s.last, l == " " || l == "\t" { s.removeLast() }
        return s
    }

    /// If-None-Match: `*` or a list of entity-tags, weak comparison.
    static func entityTagListMatches(_ value: String, etag: String) -> Bool {
        let v = trimOWS(Substring(value))
        if v == "*" { return true }
        let mine = opaque(Substring(etag))
        for item in v.split(separator: ",") {
            let tag = trimOWS(item)
            if opaque(tag) == mine { return true }
        }
        return false
    }

    private static func opaque(_ tag: Substring) -> Substring {
        tag.hasPrefix("W/") ? tag.dropFirst(2) : tag
    }

    // MARK: Content types

    /// The media type for a path's extension (case-insensitive); text types
    /// carry `charset=utf-8`; unknown → `application/octet-stream`.
    public static func contentType(forPath path: String) -> String {
        guard let dot = path.lastIndex(of: "."),
              !path[dot...].contains("/") else { return "application/octet-stream" }
        switch path[path.index(after: dot)...].lowercased() {
        case "html", "htm": return "text/html; charset=utf-8"
        case "css": return "text/css; charset=utf-8"
        case "js", "mjs": return "text/javascript; charset=utf-8"
        case "json", "map": return "application/json"
        case "txt", "text", "log": return "text/plain; charset=utf-8"
        case "md": return "text/markdown; charset=utf-8"
        case "csv": return "text/csv; charset=utf-8"
        case "xml": return "application/xml"
        case "png": return "image/png"
        case "jpg", "jpeg": return "image/jpeg"
        case "gif": return "image/gif"
        case "webp": return "image/webp"
        case "avif": return "image/avif"
        case "svg": return "image/svg+xml"
        case "ico": return "image/x-icon"
        case "wasm": return "application/wasm"
        case "pdf": return "application/pdf"
        case "zip": return "application/zip"
        case "gz": return "application/gzip"
        case "tar": return "application/x-tar"
        case "woff": return "font/woff"
        case "woff2": return "font/woff2"
        case "ttf": return "font/ttf"
        case "otf": return "font/otf"
        case "mp4": return "video/mp4"
        case "webm": return "video/webm"
        case "mp3": return "audio/mpeg"
        case "ogg": return "audio/ogg"
        case "wav": return "audio/wav"
        default: return "application/octet-stream"
        }
    }
}
