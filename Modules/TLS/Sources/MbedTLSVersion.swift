import CStrataMbedTLS

/// The mbedTLS this module was compiled against (checked at compile time by CStrataMbedTLS.h).
public enum MbedTLSBuild {
    /// `MBEDTLS_VERSION_NUMBER` of the headers, e.g. 0x021C0300 for 2.28.3.
    public static let versionNumber: Int = Int(strata_mbedtls_version_number)
}
