import Foundation

/// The test PKI: Tests/TLSTests/pki/make-pki.py, run once per test process into a fresh
/// temporary directory (removed at exit; set `STRATA_KEEP_PKI=1` to keep it and have its
/// path printed). Certificates are generated, not committed, because the validity cases
/// (`expired.pem`, `notyet.pem`) are relative to today and committed certificates expire.
///
/// The script needs Debian's `/usr/bin/python3` with python3-cryptography. Without them
/// every use throws (the tests fail, they are not skipped) with a message saying how to get
/// them. The file names and what each is for are in the script and in `manifest.json`.
///
///     let pki = try TestPKI.shared
///     let chain = try pki.pem("server.pem")     // NUL-terminated, as mbedTLS parses PEM
///     let path = try pki.path("root.pem")
final class TestPKI: Sendable {
    /// The PKI of this test process, generated on first use (thread-safe: a `static let`).
    static var shared: TestPKI {
        get throws { try generated.get() }
    }

    /// The directory holding the generated files.
    let directory: URL
    /// Every generated file and the case it exists for (from manifest.json).
    let cases: [String: String]

    /// The absolute path of a generated file; throws for a name the generator does not write
    /// (a typo in a test must not look like a missing-file verification failure).
    func path(_ file: String) throws -> String {
        guard cases[file] != nil else {
            throw TestPKIError(description: "TestPKI: make-pki.py writes no file named \(file); see \(directory.path)/manifest.json")
        }
        return directory.appendingPathComponent(file).path
    }

    /// The bytes of a generated file, as written.
    func bytes(_ file: String) throws -> [UInt8] {
        [UInt8](try Data(contentsOf: URL(fileURLWithPath: try path(file))))
    }

    /// The bytes of a generated PEM file followed by one NUL, the form mbedTLS's
    /// `mbedtls_x509_crt_parse` and `mbedtls_pk_parse_key` require for PEM input (the
    /// length passed includes the NUL).
    func pem(_ file: String) throws -> [UInt8] {
        try bytes(file) + [0]
    }

    // MARK: Generation

    /// Tests/TLSTests/pki/make-pki.py, found from this file's path.
    static let script = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent()  // Support
        .deletingLastPathComponent()  // TLSTests
        .appendingPathComponent("pki")
        .appendingPathComponent("make-pki.py")

    static let python = "/usr/bin/python3"

    private static let generated: Result<TestPKI, TestPKIError> = {
        do {
            let pki = try generate()
            if ProcessInfo.processInfo.environment["STRATA_KEEP_PKI"] == "1" {
                print("TestPKI: kept in \(pki.directory.path)")
            } else {
                atexit {
                    if case .success(let pki) = TestPKI.generated {
                        try? FileManager.default.removeItem(at: pki.directory)
                    }
                }
            }
            return .success(pki)
        } catch let error as TestPKIError {
            return .failure(error)
        } catch {
            return .failure(TestPKIError(description: "TestPKI: \(error)"))
        }
    }()

    private init(directory: URL, cases: [String: String]) {
        self.directory = directory
        self.cases = cases
    }

    private static let howToFix =
        "The TLS tests generate their certificates with Debian's python3 and python3-cryptography: run `make test` (it installs what the tests need) or `apt-get install python3 python3-cryptography`."

    private static func generate() throws -> TestPKI {
        let fileManager = FileManager.default
        guard fileManager.isExecutableFile(atPath: python) else {
            throw TestPKIError(description: "TestPKI: \(python) is missing. \(howToFix)")
        }
        guard fileManager.fileExists(atPath: script.path) else {
            throw TestPKIError(description: "TestPKI: the generator \(script.path) is missing")
        }
        let directory = fileManager.temporaryDirectory
            .appendingPathComponent("strata-tls-pki-\(getpid())-\(UUID().uuidString)")

        let process = Process()
        process.executableURL = URL(fileURLWithPath: python)
        process.arguments = [script.path, directory.path]
        // Debian's interpreter with Debian's packages: nothing from a pyenv environment.
        var environment = ProcessInfo.processInfo.environment
        for name in ["PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "PYTHONUSERBASE"] {
            environment[name] = nil
        }
        environment["PYTHONDONTWRITEBYTECODE"] = "1"
        process.environment = environment
        let errors = Pipe()
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = FileHandle.nullDevice
        process.standardError = errors
        do {
            try process.run()
        } catch {
            throw TestPKIError(description: "TestPKI: could not run \(python): \(error). \(howToFix)")
        }
        let stderr = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        guard process.terminationReason == .exit, process.terminationStatus == 0 else {
            try? fileManager.removeItem(at: directory)
            throw TestPKIError(
                description: "TestPKI: \(python) \(script.path) failed (status \(process.terminationStatus)): \(stderr.trimmingCharacters(in: .whitespacesAndNewlines)). \(howToFix)"
            )
        }

        struct Manifest: Decodable {
            struct Entry: Decodable {
                var file: String
                var `case`: String
            }
            var files: [Entry]
        }
        let manifestURL = directory.appendingPathComponent("manifest.json")
        let manifest: Manifest
        do {
            manifest = try JSONDecoder().decode(Manifest.self, from: Data(contentsOf: manifestURL))
        } catch {
            throw TestPKIError(description: "TestPKI: unreadable \(manifestURL.path): \(error)")
        }
        var cases: [String: String] = [:]
        for entry in manifest.files {
            guard fileManager.fileExists(atPath: directory.appendingPathComponent(entry.file).path) else {
                throw TestPKIError(description: "TestPKI: manifest.json lists \(entry.file), which make-pki.py did not write")
            }
            cases[entry.file] = entry.case
        }
        return TestPKI(directory: directory, cases: cases)
    }
}

struct TestPKIError: Error, CustomStringConvertible {
    let description: String
}
