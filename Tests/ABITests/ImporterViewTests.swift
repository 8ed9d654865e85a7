import Testing
import _StrataABIKit

/// Test-time proof: every entry of the host table equals what the Swift (Clang)
/// importer sees — `MemoryLayout` size/alignment/offsets and imported constants.
@Suite("Host table vs the Swift importer")
struct ImporterViewTests {
    @Test("every constant and layout of the host table matches the importer")
    func hostTableMatchesImporter() throws {
        let table = try hostTable()
        let report = ImporterCheck.compare(table)
        for m in report.mismatches {
            Issue.record("\(m)")  // "table X = a, headers X = b"
        }
        #expect(report.mismatches.isEmpty)
        // The importer must really have checked most of the table, not skipped it.
        let defined = table.constants.values.compactMap { $0 }.count
        #expect(report.checked > defined, "only \(report.checked) entries compared; the importer view is too thin")
    }

    @Test("entries the importer cannot see are few and each has a reason")
    func notImportedEntriesAreExplained() throws {
        let report = ImporterCheck.compare(try hostTable())
        #expect(report.notImported.count < 40)
        for (name, reason) in report.notImported {
            #expect(!reason.isEmpty, "\(name) has no reason")
        }
    }

    @Test("a wrong table entry is reported as `table X = a, headers X = b`")
    func mismatchesAreReportedByName() throws {
        var table = try hostTable()
        let eagain = try #require(table.constants["EAGAIN"] ?? nil)
        table.constants["EAGAIN"] = eagain + 24
        var sin = try #require(table.types["struct sockaddr_in"] ?? nil)
        sin.size += 8
        table.types["struct sockaddr_in"] = sin
        let descriptions = ImporterCheck.compare(table).mismatches.map(\.description)
        #expect(descriptions.contains("table EAGAIN = \(eagain + 24), headers EAGAIN = \(eagain)"))
        #expect(descriptions.contains("table sizeof(struct sockaddr_in) = \(sin.size), headers sizeof(struct sockaddr_in) = \(sin.size - 8)"))
    }
}
