// Conversion to and from swift-http-types, for code written against that ecosystem's
// HTTPRequest / HTTPResponse. StrataHTTP's own types stay the fast path (no allocation for
// inline handlers); these conversions copy.
import HTTPTypes

extension HTTPRequest {
    /// The request as a swift-http-types `HTTPRequest` (method, authority from Host or the
    /// absolute-form target, path with query, every field in order; scheme "http").
    /// Field names that swift-http-types rejects cannot occur: the parser accepts only
    /// tokens.
    public var httpTypesRequest: HTTPTypes.HTTPRequest {
        let method = HTTPTypes.HTTPRequest.Method(head.method) ?? .get
        var fields = HTTPTypes.HTTPFields()
        for field in head.fields {
            if let name = HTTPTypes.HTTPField.Name(field.name) { fields.append(HTTPTypes.HTTPField(name: name, value: field.value)) }
        }
        let path = head.query.map { head.path + "?" + $0 } ?? head.path
        return HTTPTypes.HTTPRequest(method: method, scheme: "http", authority: head.host, path: path, headerFields: fields)
    }
}

extension HTTPResponse {
    /// A response from a swift-http-types `HTTPResponse` and a body. Fields that the server
    /// sets itself (Content-Length, Transfer-Encoding, Connection, Date) are dropped.
    public init(_ response: HTTPTypes.HTTPResponse, body: Body = .empty) {
        var fields = HTTPFields()
        for field in response.headerFields {
            switch field.name {
            case .contentLength, .transferEncoding, .connection, .date: continue
            default: fields.append(field.name.rawName, field.value)
            }
        }
        let status = HTTPStatus(code: response.status.code, reason: response.status.reasonPhrase.isEmpty
                                ? HTTPStatus.standard(response.status.code).reason : response.status.reasonPhrase)
        self.init(status: status, fields: fields, body: body)
    }

    /// The status and fields as a swift-http-types `HTTPResponse` (the body is not part of it).
    public var httpTypesResponse: HTTPTypes.HTTPResponse {
        var fields = HTTPTypes.HTTPFields()
        if let type = contentType {
            fields.append(HTTPTypes.HTTPField(name: .contentType, value: type.description))
        }
        for field in self.fields {
            if let n = HTTPTypes.HTTPField.Name(field.name) { fields.append(HTTPTypes.HTTPField(name: n, value: field.value)) }
        }
        return HTTPTypes.HTTPResponse(status: .init(code: status.code, reasonPhrase: status.reason), headerFields: fields)
    }
}
