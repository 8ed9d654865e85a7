// The list of everything an ABI table records. One place: the generator, the
// assertion-header renderer, the Swift test view and the CLI all read it.
//
// Adding an entry: put it in the right group below, run `make abi-generate`,
// review the diff of every abi-tables/*.json, and transcribe the value into the
// Darwin/FreeBSD tables (or write null when the platform does not define it).

/// An operating-system family. Tables and catalogue entries are scoped by it.
public enum OSFamily: String, Codable, Sendable, CaseIterable {
    /// Linux (glibc or musl).
    case linux
    /// Apple platforms (XNU).
    case darwin
    /// FreeBSD.
    case freebsd
}

/// How the presence of a constant can be checked from C.
public enum ConstantKind: Sendable, Equatable {
    /// A preprocessor macro: `#ifdef NAME` tells whether the target defines it.
    case macro
    /// An enumerator with no matching macro (for example `IORING_OP_ACCEPT`):
    /// it exists exactly on the listed OS families, and is not checked elsewhere.
    case enumerator(Set<OSFamily>)
}

/// One integer constant of the catalogue.
public struct ConstantSpec: Sendable {
    /// The C name, which is also the key in a table's `constants`.
    public let name: String
    /// The group it belongs to (`errno`, `socket`, `io_uring`, …), for display.
    public let group: String
    /// How presence is checked.
    public let kind: ConstantKind
    /// Why the Swift importer cannot see it, or nil when it can.
    public let notImportedBecause: String?

    init(_ name: String, _ group: String, _ kind: ConstantKind = .macro, notImported: String? = nil) {
        self.name = name
        self.group = group
        self.kind = kind
        self.notImportedBecause = notImported
    }
}

/// One field of a C struct in the catalogue.
public struct FieldSpec: Sendable {
    /// The C field name, also its key in the table.
    public let name: String
    /// The OS families that have this field; nil means every family that has the type.
    public let families: Set<OSFamily>?
    /// False for members of anonymous unions: the Swift importer exposes those
    /// as computed properties, so `MemoryLayout.offset(of:)` cannot see them.
    public let swiftStored: Bool

    init(_ name: String, only families: Set<OSFamily>? = nil, swiftStored: Bool = true) {
        self.name = name
        self.families = families
        self.swiftStored = swiftStored
    }
}

/// One C type of the catalogue.
public struct TypeSpec: Sendable {
    /// The C spelling (`struct sockaddr_in`, `pthread_mutex_t`), also the table key.
    public let name: String
    /// The name the Swift importer gives it.
    public let swiftName: String
    /// The OS families that define the type; nil means all.
    public let families: Set<OSFamily>?
    /// Fields whose offset and size are recorded. Empty for opaque or scalar types.
    public let fields: [FieldSpec]
    /// The group it belongs to, for display.
    public let group: String

    init(_ name: String, swift: String? = nil, _ group: String, only families: Set<OSFamily>? = nil, fields: [FieldSpec] = []) {
        self.name = name
        self.swiftName = swift ?? (name.hasPrefix("struct ") ? String(name.dropFirst(7)) : name)
        self.families = families
        self.fields = fields
        self.group = group
    }

    /// Whether the type exists on `family`.
    public func exists(on family: OSFamily) -> Bool { families?.contains(family) ?? true }

    /// The fields present on `family`.
    public func fields(on family: OSFamily) -> [FieldSpec] {
        fields.filter { $0.families?.contains(family) ?? true }
    }
}

/// The catalogue of constants and types recorded in every ABI table.
public enum Catalogue {
    static let bsd: Set<OSFamily> = [.darwin, .freebsd]
    static let linuxOnly: Set<OSFamily> = [.linux]
    static let gnuSource = "glibc declares it only under _GNU_SOURCE, which Swift's Glibc module does not define"

    /// Headers included, in this order, when probing a target of each family.
    public static func headers(for family: OSFamily) -> [String] {
        let common = [
            "sys/types.h", "errno.h", "fcntl.h", "unistd.h", "limits.h", "signal.h", "poll.h", "time.h",
            "pthread.h", "sys/time.h", "sys/resource.h", "sys/socket.h", "sys/uio.h", "sys/un.h",
            "netinet/in.h", "netinet/tcp.h", "arpa/inet.h", "stddef.h",
        ]
        switch family {
        case .linux: return common + ["sys/epoll.h", "sys/eventfd.h", "sys/sendfile.h", "linux/io_uring.h"]
        case .darwin: return common + ["sys/event.h"]
        case .freebsd: return common + ["sys/event.h", "sys/eventfd.h"]
        }
    }

    static let errnoNames = [
        "EPERM", "ENOENT", "ESRCH", "EINTR", "EIO", "ENXIO", "E2BIG", "ENOEXEC", "EBADF", "ECHILD", "EAGAIN",
        "EWOULDBLOCK", "ENOMEM", "EACCES", "EFAULT", "EBUSY", "EEXIST", "EXDEV", "ENODEV", "ENOTDIR", "EISDIR",
        "EINVAL", "ENFILE", "EMFILE", "ENOTTY", "ETXTBSY", "EFBIG", "ENOSPC", "ESPIPE", "EROFS", "EMLINK", "EPIPE",
        "EDOM", "ERANGE", "EDEADLK", "ENAMETOOLONG", "ENOLCK", "ENOSYS", "ENOTEMPTY", "ELOOP", "ENOMSG", "EIDRM",
        "ENODATA", "ETIME", "EPROTO", "EBADMSG", "EOVERFLOW", "EILSEQ", "EBADFD", "ENOTSOCK", "EDESTADDRREQ",
        "EMSGSIZE", "EPROTOTYPE", "ENOPROTOOPT", "EPROTONOSUPPORT", "ESOCKTNOSUPPORT", "EOPNOTSUPP", "ENOTSUP",
        "EPFNOSUPPORT", "EAFNOSUPPORT", "EADDRINUSE", "EADDRNOTAVAIL", "ENETDOWN", "ENETUNREACH", "ENETRESET",
        "ECONNABORTED", "ECONNRESET", "ENOBUFS", "EISCONN", "ENOTCONN", "ESHUTDOWN", "ETOOMANYREFS", "ETIMEDOUT",
        "ECONNREFUSED", "EHOSTDOWN", "EHOSTUNREACH", "EALREADY", "EINPROGRESS", "ESTALE", "EDQUOT", "ECANCELED",
        "EOWNERDEAD", "ENOTRECOVERABLE", "ENOTCAPABLE",
    ]

    /// Every constant, grouped.
    public static let constants: [ConstantSpec] = {
        var all: [ConstantSpec] = errnoNames.map { ConstantSpec($0, "errno") }
        func add(_ group: String, _ names: [String], _ kind: ConstantKind = .macro, notImported: String? = nil) {
            all += names.map { ConstantSpec($0, group, kind, notImported: notImported) }
        }
        add("fcntl", [
            "O_RDONLY", "O_WRONLY", "O_RDWR", "O_CREAT", "O_EXCL", "O_TRUNC", "O_APPEND", "O_NONBLOCK", "O_CLOEXEC",
            "O_NOCTTY", "O_DIRECTORY", "O_NOFOLLOW", "O_SYNC", "O_DSYNC", "F_GETFD", "F_SETFD", "F_GETFL", "F_SETFL",
            "F_DUPFD", "F_DUPFD_CLOEXEC", "FD_CLOEXEC", "F_SETNOSIGPIPE", "F_GETNOSIGPIPE",
        ])
        add("fcntl", ["F_GETPIPE_SZ", "F_SETPIPE_SZ"], notImported: gnuSource)
        add("socket", [
            "AF_UNSPEC", "AF_INET", "AF_INET6", "AF_UNIX", "AF_LOCAL", "PF_INET", "PF_INET6", "PF_UNIX",
            "SOCK_STREAM", "SOCK_DGRAM", "SOCK_RAW", "SOCK_SEQPACKET", "SOCK_NONBLOCK", "SOCK_CLOEXEC",
            "SOL_SOCKET", "SO_REUSEADDR", "SO_REUSEPORT", "SO_KEEPALIVE", "SO_LINGER", "SO_SNDBUF", "SO_RCVBUF",
            "SO_ERROR", "SO_TYPE", "SO_BROADCAST", "SO_RCVTIMEO", "SO_SNDTIMEO", "SO_RCVLOWAT", "SO_SNDLOWAT",
            "SO_NOSIGPIPE", "SO_DOMAIN", "SO_PROTOCOL", "SO_ACCEPTCONN", "SO_OOBINLINE", "SO_INCOMING_CPU",
            "SO_ZEROCOPY", "SO_BUSY_POLL", "SO_REUSEPORT_LB", "SCM_RIGHTS",
            "SHUT_RD", "SHUT_WR", "SHUT_RDWR", "SOMAXCONN",
            "MSG_OOB", "MSG_PEEK", "MSG_DONTROUTE", "MSG_WAITALL", "MSG_DONTWAIT", "MSG_NOSIGNAL", "MSG_TRUNC",
            "MSG_CTRUNC", "MSG_EOR", "MSG_ERRQUEUE", "MSG_ZEROCOPY", "MSG_CMSG_CLOEXEC",
        ])
        add("socket", ["MSG_MORE"], notImported: gnuSource)
        add("inet", [
            "IPPROTO_IP", "IPPROTO_IPV6", "IPPROTO_TCP", "IPPROTO_UDP", "IP_TOS", "IP_TTL", "IPV6_V6ONLY",
            "IPV6_UNICAST_HOPS", "INADDR_ANY", "INADDR_LOOPBACK", "INET_ADDRSTRLEN", "INET6_ADDRSTRLEN",
        ])
        add("tcp", [
            "TCP_NODELAY", "TCP_MAXSEG", "TCP_KEEPIDLE", "TCP_KEEPINTVL", "TCP_KEEPCNT", "TCP_KEEPALIVE",
            "TCP_CORK", "TCP_NOPUSH", "TCP_DEFER_ACCEPT", "TCP_FASTOPEN", "TCP_QUICKACK", "TCP_USER_TIMEOUT",
        ])
        add("misc", [
            "CLOCK_REALTIME", "CLOCK_MONOTONIC", "CLOCK_MONOTONIC_RAW", "CLOCK_BOOTTIME", "CLOCK_UPTIME_RAW",
            "RLIMIT_NOFILE", "SIGPIPE", "POLLIN", "POLLOUT", "POLLERR", "POLLHUP", "POLLNVAL",
        ])
        // glibc defines these as enumerators only (musl and the BSDs as macros): always present.
        add("pthread", [
            "PTHREAD_MUTEX_NORMAL", "PTHREAD_MUTEX_ERRORCHECK", "PTHREAD_MUTEX_RECURSIVE", "PTHREAD_MUTEX_DEFAULT",
        ], .enumerator(Set(OSFamily.allCases)))
        add("misc", ["POLLRDHUP"], notImported: gnuSource)
        add("epoll", [
            "EPOLLIN", "EPOLLOUT", "EPOLLPRI", "EPOLLERR", "EPOLLHUP", "EPOLLRDHUP", "EPOLLET", "EPOLLONESHOT",
            "EPOLLEXCLUSIVE", "EPOLL_CTL_ADD", "EPOLL_CTL_MOD", "EPOLL_CTL_DEL", "EPOLL_CLOEXEC",
            "EFD_NONBLOCK", "EFD_CLOEXEC", "EFD_SEMAPHORE",
        ])
        add("kqueue", [
            "EVFILT_READ", "EVFILT_WRITE", "EVFILT_TIMER", "EVFILT_USER", "EV_ADD", "EV_DELETE", "EV_ENABLE",
            "EV_DISABLE", "EV_ONESHOT", "EV_CLEAR", "EV_RECEIPT", "EV_DISPATCH", "EV_EOF", "EV_ERROR",
            "NOTE_TRIGGER", "NOTE_FFNOP",
        ])
        add("io_uring", [
            "IORING_SETUP_IOPOLL", "IORING_SETUP_SQPOLL", "IORING_SETUP_SQ_AFF", "IORING_SETUP_CQSIZE",
            "IORING_SETUP_CLAMP", "IORING_SETUP_ATTACH_WQ", "IORING_SETUP_R_DISABLED", "IORING_SETUP_SUBMIT_ALL",
            "IORING_SETUP_COOP_TASKRUN", "IORING_SETUP_TASKRUN_FLAG", "IORING_SETUP_SINGLE_ISSUER",
            "IORING_SETUP_DEFER_TASKRUN",
            "IORING_FEAT_SINGLE_MMAP", "IORING_FEAT_NODROP", "IORING_FEAT_SUBMIT_STABLE", "IORING_FEAT_FAST_POLL",
            "IORING_FEAT_EXT_ARG", "IORING_FEAT_NATIVE_WORKERS", "IORING_FEAT_CQE_SKIP", "IORING_FEAT_LINKED_FILE",
            "IORING_ENTER_GETEVENTS", "IORING_ENTER_SQ_WAKEUP", "IORING_ENTER_SQ_WAIT", "IORING_ENTER_EXT_ARG",
            "IORING_ENTER_REGISTERED_RING",
            "IORING_CQE_F_BUFFER", "IORING_CQE_F_MORE", "IORING_CQE_F_SOCK_NONEMPTY", "IORING_CQE_F_NOTIF",
            "IORING_ACCEPT_MULTISHOT", "IORING_RECV_MULTISHOT",
            "IORING_RECVSEND_POLL_FIRST", "IORING_TIMEOUT_ABS", "IORING_ASYNC_CANCEL_ALL", "IORING_ASYNC_CANCEL_FD",
            "IORING_ASYNC_CANCEL_ANY", "IORING_OFF_SQ_RING", "IORING_OFF_CQ_RING", "IORING_OFF_SQES",
        ])
        add("io_uring", [
            "IOSQE_FIXED_FILE", "IOSQE_IO_DRAIN", "IOSQE_IO_LINK", "IOSQE_IO_HARDLINK", "IOSQE_ASYNC",
            "IOSQE_BUFFER_SELECT", "IOSQE_CQE_SKIP_SUCCESS",
        ], notImported: "a macro over an enumerator shift (1U << IOSQE_*_BIT) that the Swift importer does not evaluate")
        add("io_uring", [
            "IORING_CQE_BUFFER_SHIFT", "IORING_OP_NOP", "IORING_OP_READV", "IORING_OP_WRITEV", "IORING_OP_POLL_ADD", "IORING_OP_POLL_REMOVE",
            "IORING_OP_SENDMSG", "IORING_OP_RECVMSG", "IORING_OP_TIMEOUT", "IORING_OP_TIMEOUT_REMOVE",
            "IORING_OP_ACCEPT", "IORING_OP_ASYNC_CANCEL", "IORING_OP_LINK_TIMEOUT", "IORING_OP_CONNECT",
            "IORING_OP_CLOSE", "IORING_OP_READ", "IORING_OP_WRITE", "IORING_OP_SEND", "IORING_OP_RECV",
            "IORING_OP_SPLICE", "IORING_OP_PROVIDE_BUFFERS", "IORING_OP_SHUTDOWN", "IORING_OP_MSG_RING",
            "IORING_OP_SOCKET", "IORING_OP_SEND_ZC", "IORING_OP_SENDMSG_ZC", "IORING_OP_LAST",
            "IORING_REGISTER_BUFFERS", "IORING_REGISTER_FILES", "IORING_REGISTER_EVENTFD", "IORING_REGISTER_PROBE",
            "IORING_REGISTER_RING_FDS", "IORING_UNREGISTER_RING_FDS", "IORING_REGISTER_PBUF_RING",
            "IORING_UNREGISTER_PBUF_RING",
        ], .enumerator(linuxOnly))
        return all
    }()

    /// Every type, grouped.
    public static let types: [TypeSpec] = [
        TypeSpec("socklen_t", "socket"),
        TypeSpec("sa_family_t", "socket"),
        TypeSpec("in_port_t", "inet"),
        TypeSpec("size_t", swift: "Int", "scalar"),
        TypeSpec("ssize_t", swift: "Int", "scalar"),
        TypeSpec("off_t", "scalar"),
        TypeSpec("time_t", "scalar"),
        TypeSpec("pid_t", "scalar"),
        TypeSpec("struct sockaddr", "socket", fields: [
            FieldSpec("sa_len", only: bsd), FieldSpec("sa_family"), FieldSpec("sa_data"),
        ]),
        TypeSpec("struct sockaddr_in", "inet", fields: [
            FieldSpec("sin_len", only: bsd), FieldSpec("sin_family"), FieldSpec("sin_port"),
            FieldSpec("sin_addr"), FieldSpec("sin_zero"),
        ]),
        TypeSpec("struct sockaddr_in6", "inet", fields: [
            FieldSpec("sin6_len", only: bsd), FieldSpec("sin6_family"), FieldSpec("sin6_port"),
            FieldSpec("sin6_flowinfo"), FieldSpec("sin6_addr"), FieldSpec("sin6_scope_id"),
        ]),
        TypeSpec("struct sockaddr_un", "socket", fields: [
            FieldSpec("sun_len", only: bsd), FieldSpec("sun_family"), FieldSpec("sun_path"),
        ]),
        TypeSpec("struct sockaddr_storage", "socket", fields: [
            FieldSpec("ss_len", only: bsd), FieldSpec("ss_family"),
        ]),
        TypeSpec("struct in_addr", "inet", fields: [FieldSpec("s_addr")]),
        TypeSpec("struct in6_addr", "inet"),
        TypeSpec("struct iovec", "socket", fields: [FieldSpec("iov_base"), FieldSpec("iov_len")]),
        TypeSpec("struct msghdr", "socket", fields: [
            FieldSpec("msg_name"), FieldSpec("msg_namelen"), FieldSpec("msg_iov"), FieldSpec("msg_iovlen"),
            FieldSpec("msg_control"), FieldSpec("msg_controllen"), FieldSpec("msg_flags"),
        ]),
        TypeSpec("struct cmsghdr", "socket", fields: [
            FieldSpec("cmsg_len"), FieldSpec("cmsg_level"), FieldSpec("cmsg_type"),
        ]),
        TypeSpec("struct linger", "socket", fields: [FieldSpec("l_onoff"), FieldSpec("l_linger")]),
        TypeSpec("struct timespec", "misc", fields: [FieldSpec("tv_sec"), FieldSpec("tv_nsec")]),
        TypeSpec("struct timeval", "misc", fields: [FieldSpec("tv_sec"), FieldSpec("tv_usec")]),
        TypeSpec("struct rlimit", "misc", fields: [FieldSpec("rlim_cur"), FieldSpec("rlim_max")]),
        TypeSpec("struct pollfd", "misc", fields: [FieldSpec("fd"), FieldSpec("events"), FieldSpec("revents")]),
        TypeSpec("pthread_t", "pthread"),
        TypeSpec("pthread_attr_t", "pthread"),
        TypeSpec("pthread_mutex_t", "pthread"),
        TypeSpec("pthread_mutexattr_t", "pthread"),
        TypeSpec("pthread_cond_t", "pthread"),
        TypeSpec("pthread_condattr_t", "pthread"),
        TypeSpec("pthread_rwlock_t", "pthread"),
        TypeSpec("pthread_rwlockattr_t", "pthread"),
        TypeSpec("struct epoll_event", "epoll", only: linuxOnly, fields: [FieldSpec("events"), FieldSpec("data")]),
        TypeSpec("struct kevent", "kqueue", only: bsd, fields: [
            FieldSpec("ident"), FieldSpec("filter"), FieldSpec("flags"), FieldSpec("fflags"), FieldSpec("data"),
            FieldSpec("udata"), FieldSpec("ext", only: [.freebsd]),
        ]),
        TypeSpec("struct io_uring_sqe", "io_uring", only: linuxOnly, fields: [
            FieldSpec("opcode"), FieldSpec("flags"), FieldSpec("ioprio"), FieldSpec("fd"),
            FieldSpec("off", swiftStored: false), FieldSpec("addr", swiftStored: false), FieldSpec("len"),
            FieldSpec("rw_flags", swiftStored: false), FieldSpec("user_data"),
            FieldSpec("buf_index", swiftStored: false), FieldSpec("buf_group", swiftStored: false),
            FieldSpec("personality"), FieldSpec("splice_fd_in", swiftStored: false),
        ]),
        TypeSpec("struct io_uring_cqe", "io_uring", only: linuxOnly, fields: [
            FieldSpec("user_data"), FieldSpec("res"), FieldSpec("flags"),
        ]),
        TypeSpec("struct io_uring_params", "io_uring", only: linuxOnly, fields: [
            FieldSpec("sq_entries"), FieldSpec("cq_entries"), FieldSpec("flags"), FieldSpec("sq_thread_cpu"),
            FieldSpec("sq_thread_idle"), FieldSpec("features"), FieldSpec("wq_fd"), FieldSpec("sq_off"),
            FieldSpec("cq_off"),
        ]),
        TypeSpec("struct io_uring_buf", "io_uring", only: linuxOnly, fields: [
            FieldSpec("addr"), FieldSpec("len"), FieldSpec("bid"), FieldSpec("resv"),
        ]),
        TypeSpec("struct io_uring_buf_reg", "io_uring", only: linuxOnly, fields: [
            FieldSpec("ring_addr"), FieldSpec("ring_entries"), FieldSpec("bgid"),
        ]),
        TypeSpec("struct __kernel_timespec", "io_uring", only: linuxOnly, fields: [
            FieldSpec("tv_sec"), FieldSpec("tv_nsec"),
        ]),
        TypeSpec("struct io_uring_getevents_arg", "io_uring", only: linuxOnly, fields: [
            FieldSpec("sigmask"), FieldSpec("sigmask_sz"), FieldSpec("ts"),
        ]),
    ]

    /// Looks a constant up by name.
    public static func constant(named name: String) -> ConstantSpec? { constants.first { $0.name == name } }
}
