// kqueue's translation layer, in pure Swift and compiled on every platform (DESIGN §4): interest
// changes become a changelist, and reported kevents become readiness that the shared
// ReadinessEngine turns into completions. The Darwin and FreeBSD `struct kevent` layouts and
// constants are data here, transcribed from abi-tables/, so Linux CI encodes and decodes both
// platforms' kevents byte for byte (Tests/EventsTests/KqueueTranslationTests.swift, which also
// checks every number below against the JSON tables). Kqueue.swift, compiled only on Darwin and
// FreeBSD, converts between this `Kevent` value and the system's `kevent` and checks these
// layouts against the headers it is compiled with.

/// Where each field of `struct kevent` lies on one platform.
///
/// Both platforms with a table are little-endian (`target.endianness` in abi-tables), which is
/// how ``KqueueTranslator/encode(_:)`` writes integers.
struct KeventLayout: Hashable, Sendable {
    /// One field: its offset from the start of the struct and its size, in bytes.
    struct Field: Hashable, Sendable {
        /// Bytes from the start of `struct kevent`.
        var offset: Int
        /// The field's size in bytes.
        var size: Int
    }

    /// `sizeof(struct kevent)`.
    var size: Int
    /// `_Alignof(struct kevent)`.
    var alignment: Int
    /// `uintptr_t ident`: the descriptor (read/write filters) or a user identifier (EVFILT_USER).
    var ident: Field
    /// `int16_t filter`: `EVFILT_*`.
    var filter: Field
    /// `uint16_t flags`: `EV_*`.
    var flags: Field
    /// `uint32_t fflags`: filter flags (`NOTE_TRIGGER`; the socket error with `EV_EOF`).
    var fflags: Field
    /// `intptr_t data` (Darwin) / `int64_t data` (FreeBSD): bytes ready, or the errno with `EV_ERROR`.
    var data: Field
    /// `void *udata`: opaque, returned unchanged (Strata leaves it 0).
    var udata: Field
    /// `uint64_t ext[4]` (FreeBSD ≥ 12 only); nil where the struct has no such field.
    var ext: Field?

    /// Darwin (arm64 and x86_64): 32 bytes, 4-byte aligned (`#pragma pack(4)` in `sys/event.h`).
    /// From abi-tables/darwin-arm64.json and darwin-x86_64.json, `types["struct kevent"]`.
    static let darwin = KeventLayout(
        size: 32, alignment: 4,
        ident: Field(offset: 0, size: 8), filter: Field(offset: 8, size: 2), flags: Field(offset: 10, size: 2),
        fflags: Field(offset: 12, size: 4), data: Field(offset: 16, size: 8), udata: Field(offset: 24, size: 8),
        ext: nil)

    /// FreeBSD ≥ 12 (x86_64): 64 bytes with `ext[4]`, 8-byte aligned.
    /// From abi-tables/freebsd-x86_64.json, `types["struct kevent"]`.
    static let freeBSD = KeventLayout(
        size: 64, alignment: 8,
        ident: Field(offset: 0, size: 8), filter: Field(offset: 8, size: 2), flags: Field(offset: 10, size: 2),
        fflags: Field(offset: 12, size: 4), data: Field(offset: 16, size: 8), udata: Field(offset: 24, size: 8),
        ext: Field(offset: 32, size: 32))
}

/// The kqueue constants Strata uses, for one platform.
///
/// Runtime code on Darwin and FreeBSD uses the values its headers define; ``KqueueBackend``
/// checks at start-up that they equal these, and the unit tests check these against the tables.
struct KqueueConstants: Hashable, Sendable {
    /// `EVFILT_READ`: readable, or connections waiting to be accepted.
    var filterRead: Int16
    /// `EVFILT_WRITE`: writable, or a nonblocking connect finished.
    var filterWrite: Int16
    /// `EVFILT_USER`: a user-triggered event (the loop's wakeup).
    var filterUser: Int16
    /// `EV_ADD`: add (or modify) the event.
    var add: UInt16
    /// `EV_DELETE`: remove the event.
    var delete: UInt16
    /// `EV_CLEAR`: reset the state after the event is reported (edge-triggered).
    var clear: UInt16
    /// `EV_EOF`: the peer closed its side (read filter), or the socket cannot send (write filter).
    var endOfFile: UInt16
    /// `EV_ERROR`: a change failed (errno in `data`), or a receipt (`data` 0).
    var error: UInt16
    /// `EV_RECEIPT`: report every change as an `EV_ERROR` event, 0 on success.
    var receipt: UInt16
    /// `NOTE_TRIGGER`: fire an `EVFILT_USER` event.
    var noteTrigger: UInt32

    /// Darwin. From abi-tables/darwin-arm64.json (identical in darwin-x86_64.json):
    /// EVFILT_READ -1, EVFILT_WRITE -2, EVFILT_USER -10, EV_ADD 0x1, EV_DELETE 0x2, EV_CLEAR 0x20,
    /// EV_EOF 0x8000, EV_ERROR 0x4000, EV_RECEIPT 0x40, NOTE_TRIGGER 0x01000000.
    static let darwin = KqueueConstants(
        filterRead: -1, filterWrite: -2, filterUser: -10,
        add: 0x0001, delete: 0x0002, clear: 0x0020, endOfFile: 0x8000, error: 0x4000, receipt: 0x0040,
        noteTrigger: 0x0100_0000)

    /// FreeBSD. From abi-tables/freebsd-x86_64.json: as Darwin except EVFILT_USER, which is -11.
    static let freeBSD = KqueueConstants(
        filterRead: -1, filterWrite: -2, filterUser: -11,
        add: 0x0001, delete: 0x0002, clear: 0x0020, endOfFile: 0x8000, error: 0x4000, receipt: 0x0040,
        noteTrigger: 0x0100_0000)
}

/// One `struct kevent` as a Swift value, independent of the platform's layout.
struct Kevent: Hashable, Sendable {
    /// FreeBSD's `ext[4]`; zero in everything Strata submits, ignored on Darwin.
    struct Extension: Hashable, Sendable {
        var e0: UInt64 = 0, e1: UInt64 = 0, e2: UInt64 = 0, e3: UInt64 = 0
    }

    /// The descriptor, or the `EVFILT_USER` identifier.
    var ident: UInt64
    /// `EVFILT_*`.
    var filter: Int16
    /// `EV_*`.
    var flags: UInt16
    /// Filter flags.
    var fflags: UInt32 = 0
    /// Filter data; with `EV_ERROR`, the errno.
    var data: Int64 = 0
    /// Opaque user data (0).
    var udata: UInt64 = 0
    /// FreeBSD's `ext`.
    var ext = Extension()
}

/// What one reported kevent means to the readiness engine.
enum KqueueReadiness: Hashable, Sendable {
    /// The descriptor is readable (or has connections to accept). `endOfStream` is `EV_EOF` (the
    /// peer closed its side); `pendingError` is the socket error kqueue put in `fflags` with it.
    case readable(fd: CInt, endOfStream: Bool, pendingError: Int32)
    /// The descriptor is writable (or its nonblocking connect ended). `endOfStream` is `EV_EOF`
    /// (nothing more can be sent); `pendingError` as for ``readable(fd:endOfStream:pendingError:)``.
    case writable(fd: CInt, endOfStream: Bool, pendingError: Int32)
    /// The loop's `EVFILT_USER` wakeup fired.
    case wake
    /// A change for `ident` and `filter` failed: `result` is the negated errno from `data`.
    case changeFailed(ident: UInt64, filter: Int16, result: Int32)
    /// An `EV_RECEIPT` receipt: the change for `ident` and `filter` was applied.
    case changeApplied(ident: UInt64, filter: Int16)
    /// An event Strata did not ask for (another filter or `EVFILT_USER` identifier): ignored.
    case ignored
}

/// kqueue's interest → changelist and kevent → readiness translation for one platform.
///
/// The backend watches each descriptor once, for both filters, with `EV_ADD | EV_CLEAR` (edge
/// semantics like epoll's `EPOLLET`); it never deletes a watch, because closing a descriptor
/// removes its kevents, and it drops changes still queued for a descriptor that is closing.
struct KqueueTranslator: Hashable, Sendable {
    /// The platform's constants.
    var constants: KqueueConstants
    /// The platform's `struct kevent` layout.
    var layout: KeventLayout

    /// Darwin's constants and layout.
    static let darwin = KqueueTranslator(constants: .darwin, layout: .darwin)
    /// FreeBSD's constants and layout.
    static let freeBSD = KqueueTranslator(constants: .freeBSD, layout: .freeBSD)

    #if canImport(Darwin)
    /// The platform this build runs on.
    static let host = darwin
    #elseif os(FreeBSD)
    /// The platform this build runs on.
    static let host = freeBSD
    #endif

    // MARK: Changelist

    /// Appends the changes that watch `fd`: `EVFILT_READ` and `EVFILT_WRITE`, each `EV_ADD | EV_CLEAR`.
    func appendWatch(of fd: CInt, to changes: inout [Kevent]) {
        let ident = UInt64(UInt32(bitPattern: fd))
        let flags = constants.add | constants.clear
        changes.append(Kevent(ident: ident, filter: constants.filterRead, flags: flags))
        changes.append(Kevent(ident: ident, filter: constants.filterWrite, flags: flags))
    }

    /// Removes changes for `fd` that were not submitted yet (the descriptor is closing).
    func dropPendingChanges(for fd: CInt, from changes: inout [Kevent]) {
        let ident = UInt64(UInt32(bitPattern: fd))
        let read = constants.filterRead, write = constants.filterWrite
        changes.removeAll { $0.ident == ident && ($0.filter == read || $0.filter == write) }
    }

    /// The change that creates the wakeup event: `EVFILT_USER`, `EV_ADD | EV_CLEAR | EV_RECEIPT`
    /// (the receipt reports success or the errno at start-up).
    func wakeRegistration(ident: UInt) -> Kevent {
        Kevent(ident: UInt64(ident), filter: constants.filterUser,
               flags: constants.add | constants.clear | constants.receipt)
    }

    /// The change that fires the wakeup event: `EVFILT_USER` with `NOTE_TRIGGER`.
    func wakeTrigger(ident: UInt) -> Kevent {
        Kevent(ident: UInt64(ident), filter: constants.filterUser, flags: 0, fflags: constants.noteTrigger)
    }

    // MARK: Reported events

    /// What a reported event means. `wakeIdent` is the loop's `EVFILT_USER` identifier.
    func readiness(of event: Kevent, wakeIdent: UInt) -> KqueueReadiness {
        if event.flags & constants.error != 0 {
            return event.data == 0
                ? .changeApplied(ident: event.ident, filter: event.filter)
                : .changeFailed(ident: event.ident, filter: event.filter,
                                result: -Int32(truncatingIfNeeded: event.data))
        }
        let fd = CInt(truncatingIfNeeded: event.ident)
        let endOfStream = event.flags & constants.endOfFile != 0
        let pendingError = endOfStream ? Int32(bitPattern: event.fflags) : 0
        switch event.filter {
        case constants.filterRead:
            return .readable(fd: fd, endOfStream: endOfStream, pendingError: pendingError)
        case constants.filterWrite:
            return .writable(fd: fd, endOfStream: endOfStream, pendingError: pendingError)
        case constants.filterUser where event.ident == UInt64(wakeIdent):
            return .wake
        default:
            return .ignored
        }
    }

    /// Hands one event's meaning to `engine`, which emits the completions; returns true for the
    /// wakeup (the backend then calls ``Waker/consumed()``).
    ///
    /// `EV_EOF` and its pending error only make the side ready: the next call on the descriptor
    /// returns the bytes still buffered, then 0 or the error, in order — completing with the error
    /// here could drop data that arrived before it.
    func deliver<W: ReadinessWatcher>(_ readiness: KqueueReadiness, to engine: ReadinessEngine<W>,
                                      completions: inout [RawCompletion]) -> Bool {
        switch readiness {
        case .readable(let fd, _, _):
            engine.ready(fd, readable: true, writable: false, completions: &completions)
        case .writable(let fd, _, _):
            engine.ready(fd, readable: false, writable: true, completions: &completions)
        case .changeFailed(let ident, let filter, let result) where filter == constants.filterRead:
            engine.watchFailed(CInt(truncatingIfNeeded: ident), direction: .read, result: result,
                               completions: &completions)
        case .changeFailed(let ident, let filter, let result) where filter == constants.filterWrite:
            engine.watchFailed(CInt(truncatingIfNeeded: ident), direction: .write, result: result,
                               completions: &completions)
        case .wake:
            return true
        case .changeFailed, .changeApplied, .ignored:
            break
        }
        return false
    }

    // MARK: Bytes

    /// The event's bytes in this platform's layout (little-endian).
    func encode(_ event: Kevent) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: layout.size)
        func put(_ value: UInt64, _ field: KeventLayout.Field) {
            for i in 0..<field.size { bytes[field.offset + i] = UInt8(truncatingIfNeeded: value >> (8 * UInt64(i))) }
        }
        put(event.ident, layout.ident)
        put(UInt64(UInt16(bitPattern: event.filter)), layout.filter)
        put(UInt64(event.flags), layout.flags)
        put(UInt64(event.fflags), layout.fflags)
        put(UInt64(bitPattern: event.data), layout.data)
        put(event.udata, layout.udata)
        if let ext = layout.ext {
            let word = ext.size / 4
            for (i, value) in [event.ext.e0, event.ext.e1, event.ext.e2, event.ext.e3].enumerated() {
                put(value, KeventLayout.Field(offset: ext.offset + i * word, size: word))
            }
        }
        return bytes
    }

    /// The event in `bytes`, which hold one `struct kevent` in this platform's layout.
    /// - Precondition: `bytes.count == layout.size`.
    func decode(_ bytes: [UInt8]) -> Kevent {
        precondition(bytes.count == layout.size, "a kevent is \(layout.size) bytes here, got \(bytes.count)")
        func get(_ field: KeventLayout.Field) -> UInt64 {
            var value: UInt64 = 0
            for i in 0..<field.size { value |= UInt64(bytes[field.offset + i]) << (8 * UInt64(i)) }
            return value
        }
        var event = Kevent(ident: get(layout.ident),
                           filter: Int16(bitPattern: UInt16(truncatingIfNeeded: get(layout.filter))),
                           flags: UInt16(truncatingIfNeeded: get(layout.flags)),
                           fflags: UInt32(truncatingIfNeeded: get(layout.fflags)),
                           data: Int64(bitPattern: get(layout.data)),
                           udata: get(layout.udata))
        if let ext = layout.ext {
            let word = ext.size / 4
            event.ext = Kevent.Extension(e0: get(.init(offset: ext.offset, size: word)),
                                         e1: get(.init(offset: ext.offset + word, size: word)),
                                         e2: get(.init(offset: ext.offset + 2 * word, size: word)),
                                         e3: get(.init(offset: ext.offset + 3 * word, size: word)))
        }
        return event
    }
}
