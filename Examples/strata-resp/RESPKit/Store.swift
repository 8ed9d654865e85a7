// The in-memory key space and the commands that act on it. Replies are
// appended to a caller-owned byte array; no Strings on the command path.

/// What the connection should do after a command's reply has been written.
public enum RESPCommandOutcome: Equatable, Sendable {
    /// Keep reading commands.
    case proceed
    /// Flush the reply, then close the connection (QUIT).
    case closeAfterReply
}

/// The result of ``RESPStore/process(_:parser:now:into:)``.
public struct RESPProcessResult: Equatable, Sendable {
    /// Bytes to drop from the front of the input buffer.
    public var consumed: Int
    /// Commands executed.
    public var commands: Int
    /// True when the connection must be closed once `out` is flushed (QUIT
    /// or a protocol error); any input after that point was not parsed.
    public var closeConnection: Bool

    /// Creates a result.
    public init(consumed: Int, commands: Int, closeConnection: Bool) {
        self.consumed = consumed
        self.commands = commands
        self.closeConnection = closeConnection
    }
}

/// A command name folded to lower case and packed into an integer.
private enum CommandName {
    /// Packs up to 8 bytes, lower-casing ASCII letters; nil if longer.
    @inline(__always)
    static func pack(_ name: UnsafeRawBufferPointer) -> UInt64? {
        let count = name.count
        if count > 8 || count == 0 { return nil }
        var packed: UInt64 = 0
        var index = count - 1
        while index >= 0 {
            var byte = name[index]
            if byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z") { byte |= 0x20 }
            packed = packed << 8 | UInt64(byte)
            index -= 1
        }
        return packed
    }

    // The constants are the little-endian packing of the lower-case names.
    static var get: UInt64 { 0x746567 } // "get"
    static var set: UInt64 { 0x746573 } // "set"
    static var ping: UInt64 { 0x676E6970 } // "ping"
    static var echo: UInt64 { 0x6F686365 } // "echo"
    static var del: UInt64 { 0x6C6564 } // "del"
    static var incr: UInt64 { 0x72636E69 } // "incr"
    static var expire: UInt64 { 0x657269707865 } // "expire"
    static var ttl: UInt64 { 0x6C7474 } // "ttl"
    static var pttl: UInt64 { 0x6C747470 } // "pttl"
    static var mget: UInt64 { 0x7465676D } // "mget"
    static var mset: UInt64 { 0x7465736D } // "mset"
    static var command: UInt64 { 0x646E616D6D6F63 } // "command"
    static var config: UInt64 { 0x6769666E6F63 } // "config"
    static var quit: UInt64 { 0x74697571 } // "quit"
    static var select: UInt64 { 0x7463656C6573 } // "select"
    // Options and subcommands.
    static var ex: UInt64 { 0x7865 } // "ex"
    static var px: UInt64 { 0x7870 } // "px"
    static var nx: UInt64 { 0x786E } // "nx"
    static var xx: UInt64 { 0x7878 } // "xx"
    static var gt: UInt64 { 0x7467 } // "gt"
    static var lt: UInt64 { 0x746C } // "lt"
    static var keepttl: UInt64 { 0x6C74747065656B } // "keepttl"
    static var docs: UInt64 { 0x73636F64 } // "docs"
    static var info: UInt64 { 0x6F666E69 } // "info"
    static var count: UInt64 { 0x746E756F63 } // "count"
    static var list: UInt64 { 0x7473696C } // "list"
    static var save: UInt64 { 0x65766173 } // "save"
}

/// Case-insensitive comparison of `bytes` with a lower-case ASCII word.
@inline(__always)
private func equalsIgnoringCase(_ bytes: UnsafeRawBufferPointer, _ word: StaticString) -> Bool {
    word.withUTF8Buffer { lower in
        if lower.count != bytes.count { return false }
        for index in 0..<lower.count {
            var byte = bytes[index]
            if byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z") { byte |= 0x20 }
            if byte != lower[index] { return false }
        }
        return true
    }
}

/// An in-memory string key space executing the supported Redis commands.
///
/// Not thread-safe and not `Sendable`: use one store per thread (or per
/// event loop), touched only from that thread. Time is passed in as
/// monotonic milliseconds (`now`), read once per batch of commands, like
/// Redis' command time snapshot; expiry is lazy on access plus
/// ``expireSweep(now:budget:)``.
public final class RESPStore {
    // Only this class touches `table`, never re-entrantly: skip the dynamic
    // exclusivity checks a class property would otherwise cost per access.
    @exclusivity(unchecked) var table: ByteTable
    private var sweepCursor = 0

    /// Creates an empty store. `seed` fixes the key hash (tests); by default
    /// it is random, so the table's layout cannot be predicted by clients.
    public init(seed: UInt64? = nil, initialCapacity: Int = 1024) {
        table = ByteTable(seed: seed ?? UInt64.random(in: .min ... .max), capacity: max(16, initialCapacity))
    }

    /// The number of keys, counting expired keys not yet removed.
    public var count: Int { table.count }

    /// Removes every key.
    public func removeAll() {
        table.removeAll()
        sweepCursor = 0
    }

    // MARK: Key access with lazy expiry

    /// The entry index of a live `key`, removing it if it has expired.
    @inline(__always)
    private func lookup(_ key: UnsafeRawBufferPointer, hash: UInt64, now: Int64) -> (slot: Int, entry: Int)? {
        guard let found = table.find(key, hash: hash) else { return nil }
        let expireAt = table[found.entry].expireAt
        if expireAt >= 0 && now > expireAt {
            table.remove(slot: found.slot, entry: found.entry)
            return nil
        }
        return found
    }

    /// Sets `key` to `value`. `expireAt`: new absolute expiry, -1 for none;
    /// `keepTTL` keeps the current expiry of an existing key instead.
    @inline(__always)
    private func store(_ key: UnsafeRawBufferPointer, hash: UInt64, found: Int?, value: UnsafeRawBufferPointer,
                       expireAt: Int64, keepTTL: Bool) {
        if let index = found {
            table[index].setValue(value)
            if !keepTTL { table[index].expireAt = expireAt }
        } else {
            table.insert(key: key, hash: hash, value: value, expireAt: expireAt)
        }
    }

    /// Examines at most `budget` keys (continuing where the previous sweep
    /// stopped, wrapping around) and removes those expired at `now`.
    /// Returns the number removed. Call it periodically from the loop thread.
    @discardableResult
    public func expireSweep(now: UInt64, budget: Int) -> Int {
        let now = Int64(clamping: now)
        var removed = 0
        var examined = 0
        while examined < budget && table.count > 0 {
            if sweepCursor >= table.count { sweepCursor = 0 }
            let entry = table[sweepCursor]
            examined += 1
            if entry.expireAt >= 0 && now > entry.expireAt {
                let key = entry.bytes.withUnsafeBytes { raw in
                    table.find(UnsafeRawBufferPointer(rebasing: raw[0..<entry.keyCount]), hash: entry.hash)
                }
                if let key {
                    // The last entry moves into this index: examine it next.
                    table.remove(slot: key.slot, entry: key.entry)
                    removed += 1
                    continue
                }
            }
            sweepCursor += 1
        }
        return removed
    }

    // MARK: Driving

    /// Parses and executes every complete command in `input`, appending the
    /// replies to `out`. Stops after QUIT or a protocol error (whose reply is
    /// appended), with `closeConnection` set.
    public func process(_ input: UnsafeRawBufferPointer, parser: RESPParser, now: UInt64,
                        into out: inout [UInt8]) -> RESPProcessResult {
        var offset = 0
        var commands = 0
        while true {
            let rest = UnsafeRawBufferPointer(rebasing: input[offset...])
            switch parser.parse(rest) {
            case .command(let command, let consumed):
                offset += consumed
                commands += 1
                if execute(command, now: now, into: &out) == .closeAfterReply {
                    return RESPProcessResult(consumed: offset, commands: commands, closeConnection: true)
                }
            case .needMore(let consumed):
                return RESPProcessResult(consumed: offset + consumed, commands: commands, closeConnection: false)
            case .protocolError(let error):
                error.writeReply(into: &out)
                return RESPProcessResult(consumed: input.count, commands: commands, closeConnection: true)
            }
        }
    }

    /// Executes one command, appending its reply to `out`.
    ///
    /// Unknown commands and wrong arities get Redis 7's error replies; the
    /// connection stays open. `now` is monotonic milliseconds.
    public func execute(_ command: RESPCommand, now: UInt64, into out: inout [UInt8]) -> RESPCommandOutcome {
        let now = Int64(clamping: now)
        let argc = command.count
        guard let name = CommandName.pack(command[0]) else {
            unknownCommand(command, into: &out)
            return .proceed
        }
        switch name {
        case CommandName.get:
            guard argc == 2 else { return arityError("get", into: &out) }
            get(command[1], now: now, into: &out)
        case CommandName.set:
            guard argc >= 3 else { return arityError("set", into: &out) }
            set(command, now: now, into: &out)
        case CommandName.ping:
            if argc == 1 {
                out.appendStatic("+PONG\r\n")
            } else if argc == 2 {
                out.appendBulkReply(command[1])
            } else {
                return arityError("ping", into: &out)
            }
        case CommandName.echo:
            guard argc == 2 else { return arityError("echo", into: &out) }
            out.appendBulkReply(command[1])
        case CommandName.del:
            guard argc >= 2 else { return arityError("del", into: &out) }
            var removed: Int64 = 0
            for index in 1..<argc {
                let key = command[index]
                if let found = lookup(key, hash: table.hash(key), now: now) {
                    table.remove(slot: found.slot, entry: found.entry)
                    removed += 1
                }
            }
            out.appendIntegerReply(removed)
        case CommandName.incr:
            guard argc == 2 else { return arityError("incr", into: &out) }
            incr(command[1], now: now, into: &out)
        case CommandName.expire:
            guard argc >= 3 else { return arityError("expire", into: &out) }
            expire(command, now: now, into: &out)
        case CommandName.ttl:
            guard argc == 2 else { return arityError("ttl", into: &out) }
            ttl(command[1], now: now, milliseconds: false, into: &out)
        case CommandName.pttl:
            guard argc == 2 else { return arityError("pttl", into: &out) }
            ttl(command[1], now: now, milliseconds: true, into: &out)
        case CommandName.mget:
            guard argc >= 2 else { return arityError("mget", into: &out) }
            out.appendArrayHeader(argc - 1)
            for index in 1..<argc { get(command[index], now: now, into: &out) }
        case CommandName.mset:
            guard argc >= 3 && argc % 2 == 1 else { return arityError("mset", into: &out) }
            var index = 1
            while index < argc {
                let key = command[index]
                let hash = table.hash(key)
                let found = lookup(key, hash: hash, now: now)
                store(key, hash: hash, found: found?.entry, value: command[index + 1], expireAt: -1, keepTTL: false)
                index += 2
            }
            out.appendStatic("+OK\r\n")
        case CommandName.command:
            commandCommand(command, into: &out)
        case CommandName.config:
            configCommand(command, into: &out)
        case CommandName.quit:
            out.appendStatic("+OK\r\n")
            return .closeAfterReply
        case CommandName.select:
            guard argc == 2 else { return arityError("select", into: &out) }
            guard let index = parseRedisInteger(command[1]), index >= Int64(Int32.min), index <= Int64(Int32.max) else {
                out.appendStatic("-ERR value is not an integer or out of range\r\n")
                return .proceed
            }
            if index == 0 {
                out.appendStatic("+OK\r\n")
            } else {
                out.appendStatic("-ERR DB index is out of range\r\n")
            }
        default:
            unknownCommand(command, into: &out)
        }
        return .proceed
    }

    // MARK: Commands

    @inline(__always)
    private func get(_ key: UnsafeRawBufferPointer, now: Int64, into out: inout [UInt8]) {
        if let found = lookup(key, hash: table.hash(key), now: now) {
            appendBulkValue(found.entry, into: &out)
        } else {
            out.appendStatic("$-1\r\n")
        }
    }

    /// Appends entry `index`'s value, stored pre-encoded as a bulk reply.
    @inline(__always)
    private func appendBulkValue(_ index: Int, into out: inout [UInt8]) {
        let keyCount = table.entries[index].keyCount
        table.entries[index].bytes.withUnsafeBytes { raw in
            out.appendRaw(UnsafeRawBufferPointer(rebasing: raw[keyCount...]))
        }
    }

    private func set(_ command: RESPCommand, now: Int64, into out: inout [UInt8]) {
        let argc = command.count
        var nx = false, xx = false, returnOld = false, keepTTL = false
        var ex = false, px = false
        var expireArgument = 0
        var index = 3
        while index < argc {
            let option = command[index]
            let hasNext = index + 1 < argc
            switch CommandName.pack(option) {
            case CommandName.nx? where !xx:
                nx = true
            case CommandName.xx? where !nx:
                xx = true
            case CommandName.get?:
                returnOld = true
            case CommandName.keepttl? where !ex && !px:
                keepTTL = true
            case CommandName.ex? where !keepTTL && !px && hasNext:
                ex = true
                expireArgument = index + 1
                index += 1
            case CommandName.px? where !keepTTL && !ex && hasNext:
                px = true
                expireArgument = index + 1
                index += 1
            default:
                out.appendStatic("-ERR syntax error\r\n")
                return
            }
            index += 1
        }
        var expireAt: Int64 = -1
        if expireArgument != 0 {
            guard var milliseconds = parseRedisInteger(command[expireArgument]) else {
                out.appendStatic("-ERR value is not an integer or out of range\r\n")
                return
            }
            if milliseconds <= 0 || (ex && milliseconds > Int64.max / 1000) {
                out.appendStatic("-ERR invalid expire time in 'set' command\r\n")
                return
            }
            if ex { milliseconds *= 1000 }
            let (sum, overflow) = milliseconds.addingReportingOverflow(now)
            if overflow || sum <= 0 {
                out.appendStatic("-ERR invalid expire time in 'set' command\r\n")
                return
            }
            expireAt = sum
        }
        let key = command[1]
        let hash = table.hash(key)
        let found = lookup(key, hash: hash, now: now)
        if returnOld {
            if let found {
                appendBulkValue(found.entry, into: &out)
            } else {
                out.appendStatic("$-1\r\n")
            }
        }
        if (nx && found != nil) || (xx && found == nil) {
            if !returnOld { out.appendStatic("$-1\r\n") }
            return
        }
        store(key, hash: hash, found: found?.entry, value: command[2], expireAt: expireAt, keepTTL: keepTTL)
        if !returnOld { out.appendStatic("+OK\r\n") }
    }

    private func incr(_ key: UnsafeRawBufferPointer, now: Int64, into out: inout [UInt8]) {
        let hash = table.hash(key)
        var value: Int64 = 0
        let found = lookup(key, hash: hash, now: now)
        if let found {
            let entry = table[found.entry]
            let parsed = entry.bytes.withUnsafeBytes { raw in
                parseRedisInteger(UnsafeRawBufferPointer(rebasing: raw[entry.valueStart..<(entry.valueStart + entry.valueCount)]))
            }
            guard let parsed else {
                out.appendStatic("-ERR value is not an integer or out of range\r\n")
                return
            }
            value = parsed
        }
        if value == Int64.max {
            out.appendStatic("-ERR increment or decrement would overflow\r\n")
            return
        }
        value += 1
        // Format the new value on the stack, then store it (keeping the TTL).
        withDecimal(value) { decimal in
            store(key, hash: hash, found: found?.entry, value: decimal, expireAt: -1, keepTTL: true)
        }
        out.appendIntegerReply(value)
    }

    private func expire(_ command: RESPCommand, now: Int64, into out: inout [UInt8]) {
        var nx = false, xx = false, gt = false, lt = false
        for index in 3..<max(3, command.count) {
            switch CommandName.pack(command[index]) {
            case CommandName.nx?: nx = true
            case CommandName.xx?: xx = true
            case CommandName.gt?: gt = true
            case CommandName.lt?: lt = true
            default:
                out.appendStatic("-ERR Unsupported option ")
                appendSanitized(command[index], limit: Int.max, into: &out)
                out.appendStatic("\r\n")
                return
            }
        }
        if nx && (xx || gt || lt) {
            out.appendStatic("-ERR NX and XX, GT or LT options at the same time are not compatible\r\n")
            return
        }
        if gt && lt {
            out.appendStatic("-ERR GT and LT options at the same time are not compatible\r\n")
            return
        }
        guard let seconds = parseRedisInteger(command[2]) else {
            out.appendStatic("-ERR value is not an integer or out of range\r\n")
            return
        }
        if seconds > Int64.max / 1000 || seconds < Int64.min / 1000 {
            out.appendStatic("-ERR invalid expire time in 'expire' command\r\n")
            return
        }
        let milliseconds = seconds * 1000
        if milliseconds > Int64.max - now {
            out.appendStatic("-ERR invalid expire time in 'expire' command\r\n")
            return
        }
        let when = milliseconds + now
        let key = command[1]
        guard let found = lookup(key, hash: table.hash(key), now: now) else {
            out.appendStatic(":0\r\n")
            return
        }
        let current = table[found.entry].expireAt
        if (nx && current != -1) || (xx && current == -1)
            || (gt && (current == -1 || when <= current))
            || (lt && current != -1 && when >= current) {
            out.appendStatic(":0\r\n")
            return
        }
        if when <= now {
            table.remove(slot: found.slot, entry: found.entry)
        } else {
            table[found.entry].expireAt = when
        }
        out.appendStatic(":1\r\n")
    }

    private func ttl(_ key: UnsafeRawBufferPointer, now: Int64, milliseconds: Bool, into out: inout [UInt8]) {
        guard let found = lookup(key, hash: table.hash(key), now: now) else {
            out.appendStatic(":-2\r\n")
            return
        }
        let expireAt = table[found.entry].expireAt
        if expireAt == -1 {
            out.appendStatic(":-1\r\n")
            return
        }
        let remaining = max(0, expireAt - now)
        out.appendIntegerReply(milliseconds ? remaining : (remaining + 500) / 1000)
    }

    private func commandCommand(_ command: RESPCommand, into out: inout [UInt8]) {
        if command.count == 1 {
            out.appendStatic("*0\r\n")
            return
        }
        switch CommandName.pack(command[1]) {
        case CommandName.docs?, CommandName.info?, CommandName.list?:
            out.appendStatic("*0\r\n")
        case CommandName.count?:
            guard command.count == 2 else {
                out.appendStatic("-ERR wrong number of arguments for 'command|count' command\r\n")
                return
            }
            out.appendIntegerReply(15)
        default:
            unknownSubcommand(command, into: &out)
        }
    }

    private func configCommand(_ command: RESPCommand, into out: inout [UInt8]) {
        guard command.count >= 2 else {
            _ = arityError("config", into: &out)
            return
        }
        guard equalsIgnoringCase(command[1], "get") else {
            unknownSubcommand(command, into: &out)
            return
        }
        guard command.count >= 3 else {
            out.appendStatic("-ERR wrong number of arguments for 'config|get' command\r\n")
            return
        }
        // Only the parameters redis-benchmark asks for; others match nothing.
        var save = false, appendonly = false
        for index in 2..<command.count {
            let parameter = command[index]
            if equalsIgnoringCase(parameter, "save") { save = true }
            if equalsIgnoringCase(parameter, "appendonly") { appendonly = true }
        }
        out.appendArrayHeader((save ? 2 : 0) + (appendonly ? 2 : 0))
        if save { out.appendStatic("$4\r\nsave\r\n$0\r\n\r\n") }
        if appendonly { out.appendStatic("$10\r\nappendonly\r\n$2\r\nno\r\n") }
    }

    // MARK: Errors

    private func arityError(_ name: StaticString, into out: inout [UInt8]) -> RESPCommandOutcome {
        out.appendStatic("-ERR wrong number of arguments for '")
        out.appendStatic(name)
        out.appendStatic("' command\r\n")
        return .proceed
    }

    /// Appends `bytes` as C's `%.*s` would (stopping at NUL, at most `limit`
    /// bytes), with CR and LF replaced by spaces as Redis does in errors.
    /// Returns the number of bytes appended.
    @discardableResult
    private func appendSanitized(_ bytes: UnsafeRawBufferPointer, limit: Int, into out: inout [UInt8]) -> Int {
        var written = 0
        for byte in bytes {
            if byte == 0 || written >= limit { break }
            out.append(byte == 13 || byte == 10 ? UInt8(ascii: " ") : byte)
            written += 1
        }
        return written
    }

    /// `-ERR unknown command '<name>', with args beginning with: '<a>' '<b>' `
    private func unknownCommand(_ command: RESPCommand, into out: inout [UInt8]) {
        out.appendStatic("-ERR unknown command '")
        appendSanitized(command[0], limit: 128, into: &out)
        out.appendStatic("', with args beginning with: ")
        // Redis: `for (i=1; i < argc && sdslen(args) < 128; i++)
        //   args = sdscatprintf(args, "'%.*s' ", 128-sdslen(args), argv[i]);`
        var length = 0
        var index = 1
        while index < command.count && length < 128 {
            out.append(UInt8(ascii: "'"))
            length += appendSanitized(command[index], limit: 128 - length, into: &out) + 3
            out.appendStatic("' ")
            index += 1
        }
        out.appendStatic("\r\n")
    }

    /// `-ERR unknown subcommand '<sub>'. Try <NAME> HELP.`
    private func unknownSubcommand(_ command: RESPCommand, into out: inout [UInt8]) {
        out.appendStatic("-ERR unknown subcommand '")
        appendSanitized(command[1], limit: 128, into: &out)
        out.appendStatic("'. Try ")
        for byte in command[0] {
            out.append(byte >= UInt8(ascii: "a") && byte <= UInt8(ascii: "z") ? byte - 0x20 : byte)
        }
        out.appendStatic(" HELP.\r\n")
    }
}
