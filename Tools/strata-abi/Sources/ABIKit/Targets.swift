// The targets Strata keeps ABI tables for. Adding one: append a TargetSpec,
// name its compiler and Debian packages, add its Swift and C conditions, run
// `make abi-generate`, and commit the new table and assertion header
// (CONTRIBUTING.md, "Add a target").

/// One platform target: OS, libc and architecture.
public struct TargetSpec: Sendable {
    /// The table name, e.g. `linux-gnu-x86_64`; the JSON file is `abi-tables/<name>.json`.
    public let name: String
    /// The GNU-style triple.
    public let triple: String
    /// The OS family.
    public let family: OSFamily
    /// The C library (`glibc`, `musl`, `libSystem`, `FreeBSD libc`).
    public let libc: String
    /// The architecture as the table records it.
    public let arch: String
    /// Pointer width in bits.
    public let pointerWidth: Int
    /// `little` or `big`.
    public let endianness: String
    /// The C compiler driver that probes this target, or nil when the table is transcribed.
    public let compiler: String?
    /// Extra compiler arguments (before the source file).
    public let compilerArguments: [String]
    /// The Debian packages that provide the compiler and the headers.
    public let debianPackages: [String]
    /// The Debian packages whose versions the provenance records (libc and kernel headers).
    public let headerPackages: [String]
    /// The Swift `#if` condition that selects this target.
    public let swiftCondition: String
    /// The C `#if` condition that selects this target (after a libc header was included).
    public let cCondition: String

    /// Whether the table is generated from real headers on this kind of machine.
    public var isGenerated: Bool { compiler != nil }
    /// The file stem used for generated headers: `linux-gnu-x86_64` → `linux_gnu_x86_64`.
    public var identifier: String { name.replacingAll("-", with: "_") }
}

extension String {
    func replacingAll(_ a: Character, with b: Character) -> String { String(map { $0 == a ? b : $0 }) }
}

/// All targets, in table order.
public enum Targets {
    static func linuxGNU(_ arch: String, triple: String, debArch: String, bits: Int, endian: String = "little",
                         swiftArch: String, cArch: String) -> TargetSpec {
        let host = debArch == "amd64"
        return TargetSpec(
            name: "linux-gnu-\(arch)", triple: triple, family: .linux, libc: "glibc", arch: arch,
            pointerWidth: bits, endianness: endian,
            compiler: host ? "gcc" : "\(triple)-gcc",
            compilerArguments: [],
            debianPackages: host ? ["gcc", "libc6-dev", "linux-libc-dev"] : ["gcc-\(triple)"],
            headerPackages: host ? ["libc6-dev", "linux-libc-dev"] : ["libc6-dev-\(debArch)-cross", "linux-libc-dev-\(debArch)-cross"],
            swiftCondition: "os(Linux) && arch(\(swiftArch)) && canImport(Glibc)",
            cCondition: "defined(__linux__) && defined(__GLIBC__) && \(cArch)"
        )
    }

    /// Every target with a table.
    public static let all: [TargetSpec] = [
        linuxGNU("x86_64", triple: "x86_64-linux-gnu", debArch: "amd64", bits: 64, swiftArch: "x86_64",
                 cArch: "defined(__x86_64__)"),
        linuxGNU("aarch64", triple: "aarch64-linux-gnu", debArch: "arm64", bits: 64, swiftArch: "arm64",
                 cArch: "defined(__aarch64__)"),
        linuxGNU("armv7", triple: "arm-linux-gnueabihf", debArch: "armhf", bits: 32, swiftArch: "arm",
                 cArch: "defined(__arm__) && defined(__ARM_PCS_VFP)"),
        linuxGNU("riscv64", triple: "riscv64-linux-gnu", debArch: "riscv64", bits: 64, swiftArch: "riscv64",
                 cArch: "defined(__riscv) && __riscv_xlen == 64"),
        linuxGNU("i686", triple: "i686-linux-gnu", debArch: "i386", bits: 32, swiftArch: "i386",
                 cArch: "defined(__i386__)"),
        linuxGNU("ppc64le", triple: "powerpc64le-linux-gnu", debArch: "ppc64el", bits: 64,
                 swiftArch: "powerpc64le", cArch: "defined(__powerpc64__) && defined(__LITTLE_ENDIAN__)"),
        linuxGNU("s390x", triple: "s390x-linux-gnu", debArch: "s390x", bits: 64, endian: "big", swiftArch: "s390x",
                 cArch: "defined(__s390x__)"),
        TargetSpec(
            name: "linux-musl-x86_64", triple: "x86_64-linux-musl", family: .linux, libc: "musl", arch: "x86_64",
            pointerWidth: 64, endianness: "little", compiler: "musl-gcc",
            // musl-gcc sees only musl's headers; the kernel UAPI headers (linux/, asm/,
            // asm-generic/) are linked into a private directory, as Alpine's linux-headers does.
            compilerArguments: ["-isystem", "@KERNEL_HEADERS@"],
            debianPackages: ["musl-tools", "musl-dev", "linux-libc-dev"],
            headerPackages: ["musl-dev", "linux-libc-dev"],
            swiftCondition: "os(Linux) && arch(x86_64) && canImport(Musl)",
            // musl deliberately defines no identifying macro: Linux without glibc,
            // bionic or uClibc is musl.
            cCondition: "defined(__linux__) && !defined(__GLIBC__) && !defined(__BIONIC__) && !defined(__UCLIBC__) && defined(__x86_64__)"
        ),
        TargetSpec(
            name: "darwin-arm64", triple: "arm64-apple-darwin", family: .darwin, libc: "libSystem", arch: "arm64",
            pointerWidth: 64, endianness: "little", compiler: nil, compilerArguments: [], debianPackages: [],
            headerPackages: [],
            swiftCondition: "canImport(Darwin) && arch(arm64)",
            cCondition: "defined(__APPLE__) && defined(__aarch64__)"
        ),
        TargetSpec(
            name: "darwin-x86_64", triple: "x86_64-apple-darwin", family: .darwin, libc: "libSystem", arch: "x86_64",
            pointerWidth: 64, endianness: "little", compiler: nil, compilerArguments: [], debianPackages: [],
            headerPackages: [],
            swiftCondition: "canImport(Darwin) && arch(x86_64)",
            cCondition: "defined(__APPLE__) && defined(__x86_64__)"
        ),
        TargetSpec(
            name: "freebsd-x86_64", triple: "x86_64-unknown-freebsd", family: .freebsd, libc: "FreeBSD libc",
            arch: "x86_64", pointerWidth: 64, endianness: "little", compiler: nil, compilerArguments: [],
            debianPackages: [], headerPackages: [],
            swiftCondition: "os(FreeBSD) && arch(x86_64)",
            cCondition: "defined(__FreeBSD__) && defined(__x86_64__)"
        ),
    ]

    /// Looks a target up by table name.
    public static func named(_ name: String) -> TargetSpec? { all.first { $0.name == name } }
}
