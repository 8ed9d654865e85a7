extension StaticFiles {
    /// The response for a GET or HEAD of `request`'s route parameter `path` (a `*path`
    /// wildcard route): 200 with the file (sent with sendfile), 206 for a satisfiable single
    /// Range, 304 for a matching If-None-Match or If-Modified-Since, 416, 403 or 404. Every
    /// file response carries ETag, Last-Modified, Content-Type and Accept-Ranges.
    public func response(for request: HTTPInlineRequest, parameter: String = "path") -> HTTPResponse {
        let relative = request.parameters[parameter].map { range in
            String(decoding: UnsafeRawBufferPointer(rebasing: request.path[range]), as: UTF8.self)
        } ?? ""
        let resolution = resolve("/" + relative)
        guard let file = resolution.fileInfo else {
            switch resolution {
            case .forbidden, .directory:
                return HTTPResponse(status: .forbidden, contentType: "text/plain; charset=utf-8", body: .staticText("403 Forbidden\n"))
            default:
                return HTTPResponse(status: .notFound, contentType: "text/plain; charset=utf-8", body: .staticText("404 Not Found\n"))
            }
        }
        var fields = HTTPFields()
        fields.append("Content-Type", file.contentType)
        fields.append("ETag", file.etag)
        fields.append("Last-Modified", DateCache.format(epochSeconds: file.modifiedEpochSeconds))
        fields.append("Accept-Ranges", "bytes")
        let decision = StaticFiles.evaluate(
            method: request.head.knownMethod, ifNoneMatch: request.header("If-None-Match"),
            ifModifiedSince: request.header("If-Modified-Since"), range: request.header("Range"),
            ifRange: request.header("If-Range"), file: file)
        switch decision {
        case .notModified:
            fields.remove("Content-Type")
            return HTTPResponse(status: .notModified, fields: fields)
        case .full:
            return HTTPResponse(fields: fields, body: .file(path: file.path, offset: 0, length: file.size))
        case .partial(let offset, let length):
            fields.append("Content-Range", StaticFiles.contentRange(offset: offset, length: length, size: file.size))
            return HTTPResponse(status: .partialContent, fields: fields, body: .file(path: file.path, offset: offset, length: length))
        case .rangeNotSatisfiable(let size):
            var f = HTTPFields()
            f.append("Content-Range", StaticFiles.unsatisfiedContentRange(size: size))
            return HTTPResponse(status: .rangeNotSatisfiable, contentType: "text/plain; charset=utf-8", fields: f,
                                body: .staticText("416 Range Not Satisfiable\n"))
        }
    }
}
