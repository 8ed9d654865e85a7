// Command-line options, spelled as curl spells them where the two overlap.

let usageText = """
    usage: strata-fetch [options] URL

    An HTTP/1.1 client for http:// and https:// URLs; the body goes to stdout (or -o FILE).
    HTTPS is always verified: a chain to a trusted root (the system bundle, or --cacert),
    validity dates, the URL's host against the certificate's subjectAltName (RFC 6125), key
    usage and extended key usage, signature and key-size policy. No option turns that off.

      -X, --request METHOD          method (default GET; POST when data is given)
      -H, --header "NAME: VALUE"    add a request header (repeatable); "NAME:" drops a default one
      -A, --user-agent TEXT         User-Agent (default strata-fetch/0.1)
      -d, --data DATA               request body; @FILE reads FILE without CR and LF (as curl)
          --data-binary DATA        request body; @FILE reads FILE byte for byte, @- reads stdin
          --data-raw DATA           request body, taken literally (no @FILE)
      -o, --output FILE             write the body to FILE (created or truncated) instead of stdout
      -i, --include                 write the response head before the body
      -I, --head                    send HEAD and write the response head
      -f, --fail                    exit 22 without writing the body when the status is 400 or more
          --cacert FILE             trust the CA certificates in FILE (PEM) instead of the system's
          --capath DIR              trust the CA certificates in DIR instead of the system's
          --cert FILE               client certificate chain (PEM); its key is read from FILE too
                                    unless --key is given
          --key FILE                client private key (unencrypted PEM)
          --resolve HOST:PORT:ADDR  connect to ADDR for HOST:PORT (repeatable); Host, SNI and the
                                    certificate check still use HOST
          --connect-timeout SECS    limit for the TCP connect (all addresses) and, separately,
                                    for the TLS handshake (default 10)
      -m, --max-time SECS           limit for the whole transfer (default: none)
      -v, --verbose                 connection, TLS and header details on stderr
      -s, --silent, -S, --show-error, --http1.1
                                    accepted for curl compatibility; no effect (errors are
                                    always reported, HTTP/1.1 is the only version)
      -h, --help                    this text
      -V, --version                 the version

    Exit status: 0 when the response arrived complete (over a verified session for https);
    curl's codes otherwise (3 malformed URL, 6 resolve, 7 connect, 18 truncated, 22 --fail,
    28 timeout, 35 TLS handshake, 60 certificate verification, ...; see the README).
    """

/// The request body's parts, joined with "&" when there are several (as curl does).
enum DataSpec: Sendable, Equatable {
    case literal(String)
    /// `@FILE` (`-` is stdin); `stripNewlines` for -d/--data, which drops CR and LF.
    case file(String, stripNewlines: Bool)
}

struct Options: Sendable {
    var url: String?
    var method: String?
    var headers: [String] = []
    var userAgent: String?
    var data: [DataSpec] = []
    var output: String?
    var include = false
    var head = false
    var fail = false
    var cacert: String?
    var capath: String?
    var cert: String?
    var key: String?
    var resolve: [ResolveEntry] = []
    var connectTimeout: Duration = .seconds(10)
    var maxTime: Duration?
    var verbose = false
    var help = false
    var version = false
}

private enum Flag {
    case request, header, userAgent, data, dataBinary, dataRaw, output, include, head, fail
    case cacert, capath, cert, key, resolve, connectTimeout, maxTime, url
    case verbose, ignored, help, version, insecure

    var takesValue: Bool {
        switch self {
        case .include, .head, .fail, .verbose, .ignored, .help, .version, .insecure: false
        default: true
        }
    }
}

private let longFlags: [String: Flag] = [
    "--request": .request, "--header": .header, "--user-agent": .userAgent, "--data": .data,
    "--data-ascii": .data, "--data-binary": .dataBinary, "--data-raw": .dataRaw, "--output": .output,
    "--include": .include, "--head": .head, "--fail": .fail, "--cacert": .cacert, "--capath": .capath,
    "--cert": .cert, "--key": .key, "--resolve": .resolve, "--connect-timeout": .connectTimeout,
    "--max-time": .maxTime, "--url": .url, "--verbose": .verbose, "--silent": .ignored,
    "--show-error": .ignored, "--http1.1": .ignored, "--help": .help, "--version": .version,
    "--insecure": .insecure,
]

private let shortFlags: [Character: Flag] = [
    "X": .request, "H": .header, "A": .userAgent, "d": .data, "o": .output, "i": .include, "I": .head,
    "f": .fail, "m": .maxTime, "v": .verbose, "s": .ignored, "S": .ignored, "h": .help, "V": .version,
    "k": .insecure,
]

/// Parses the arguments (without the program name).
///
/// - Throws: ``FetchFailure`` with ``Exit/usage`` naming the argument and the problem.
func parseOptions(_ arguments: [String]) throws(FetchFailure) -> Options {
    var o = Options()
    var args = arguments[...]
    func usage(_ message: String) -> FetchFailure {
        FetchFailure(Exit.usage, "\(message) (strata-fetch --help lists the options)")
    }

    func apply(_ flag: Flag, _ spelled: String, _ value: String?) throws(FetchFailure) {
        switch flag {
        case .request:
            guard let v = value, !v.isEmpty, v.utf8.allSatisfy(isTokenByte) else {
                throw usage("\(spelled) \"\(value ?? "")\" is not an HTTP method")
            }
            o.method = v
        case .header: o.headers.append(value!)
        case .userAgent: o.userAgent = value!
        case .data: o.data.append(value!.hasPrefix("@") ? .file(String(value!.dropFirst()), stripNewlines: true) : .literal(value!))
        case .dataBinary: o.data.append(value!.hasPrefix("@") ? .file(String(value!.dropFirst()), stripNewlines: false) : .literal(value!))
        case .dataRaw: o.data.append(.literal(value!))
        case .output: o.output = value!
        case .include: o.include = true
        case .head: o.head = true; o.include = true
        case .fail: o.fail = true
        case .cacert: o.cacert = value!
        case .capath: o.capath = value!
        case .cert: o.cert = value!
        case .key: o.key = value!
        case .resolve: o.resolve.append(try ResolveEntry(parsing: value!))
        case .connectTimeout:
            let d = try seconds(value!, spelled)
            o.connectTimeout = d == .zero ? .seconds(10) : d
        case .maxTime:
            let d = try seconds(value!, spelled)
            o.maxTime = d == .zero ? nil : d
        case .url:
            guard o.url == nil else { throw usage("more than one URL (\(o.url!) and \(value!)): give one") }
            o.url = value!
        case .verbose: o.verbose = true
        case .ignored: break
        case .help: o.help = true
        case .version: o.version = true
        case .insecure:
            throw FetchFailure(Exit.usage, "\(spelled): certificate verification cannot be disabled; to trust a private CA, give its certificate with --cacert FILE")
        }
    }

    func seconds(_ text: String, _ spelled: String) throws(FetchFailure) -> Duration {
        guard let v = Double(text), v.isFinite, v >= 0, v <= 1e9 else {
            throw usage("\(spelled) \"\(text)\": give a number of seconds (decimals allowed)")
        }
        return .nanoseconds(Int64(v * 1e9))
    }

    while let arg = args.popFirst() {
        if arg == "--" {
            for rest in args { try apply(.url, "URL", rest) }
            break
        }
        if arg.hasPrefix("--") {
            var name = arg
            var inline: String?
            if let eq = arg.firstIndex(of: "=") {
                name = String(arg[..<eq])
                inline = String(arg[arg.index(after: eq)...])
            }
            guard let flag = longFlags[name] else {
                if name == "--location" || name == "--proxy" || name == "--compressed" || name == "--http2" {
                    throw usage("\(name) is not supported")
                }
                throw usage("unknown option \(name)")
            }
            if flag.takesValue {
                guard let value = inline ?? args.popFirst() else { throw usage("\(name) needs a value") }
                try apply(flag, name, value)
            } else {
                guard inline == nil else { throw usage("\(name) takes no value") }
                try apply(flag, name, nil)
            }
        } else if arg.hasPrefix("-") && arg.count > 1 {
            // A cluster of short options (-sSf); a value may be attached (-XPOST, -ofile).
            var rest = arg.dropFirst()
            while let c = rest.popFirst() {
                guard let flag = shortFlags[c] else { throw usage("unknown option -\(c)") }
                if flag.takesValue {
                    let value: String
                    if !rest.isEmpty {
                        value = String(rest)
                    } else if let next = args.popFirst() {
                        value = next
                    } else {
                        throw usage("-\(c) needs a value")
                    }
                    try apply(flag, "-\(c)", value)
                    break
                }
                try apply(flag, "-\(c)", nil)
            }
        } else {
            try apply(.url, "URL", arg)
        }
    }
    if o.help || o.version { return o }
    guard o.url != nil else { throw usage("no URL given") }
    if o.key != nil && o.cert == nil { throw usage("--key needs --cert (the certificate that goes with the key)") }
    return o
}
