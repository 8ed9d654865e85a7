import Testing
@testable import StrataTLS
@Test func version() { #expect(MbedTLSBuild.versionNumber >= 0x021C0000) }
