import Foundation

/// What the scheduler makes of an event before it stores it: a node's report is outside input,
/// and one value the database refuses (a NUL byte, a time outside every calendar, a number
/// that is not one) must not hold up the events around it. Every field comes out storable:
/// text without NUL and of bounded length, finite numbers in their columns' ranges, a time
/// between 2000 and a day after `now`. What had to change is listed, for the log.
extension TaskEvent {
    public enum Limits {
        /// The most text kept of each output tail and of the reason.
        public static let tailBytes = 64 * 1024
        public static let reasonBytes = 2_048
        public static let exitCode = -2_147_483_648...2_147_483_647
        public static let measurement = 0.0...1_000_000_000_000.0
        /// 2000-01-01T00:00:00Z: no fog node reports an earlier time truthfully.
        public static let earliest = 946_684_800.0
    }

    /// This event with every field storable, and what was changed to make it so.
    public func storable(now: Double) -> (event: TaskEvent, repairs: [String]) {
        var event = self
        var repairs: [String] = []
        var lossy = outputLossy ?? false
        func clean(_ text: String?, _ field: String, limit: Int) -> String? {
            guard let text else { return nil }
            let (cleaned, changed) = StorableText.make(text, maxBytes: limit)
            if changed {
                repairs.append("\(field) had NUL bytes or was too long")
                if field != "reason" { lossy = true }
            }
            return cleaned
        }
        event.stdoutTail = clean(stdoutTail, "stdout_tail", limit: Limits.tailBytes)
        event.stderrTail = clean(stderrTail, "stderr_tail", limit: Limits.tailBytes)
        event.reason = clean(reason, "reason", limit: Limits.reasonBytes)
        event.outputLossy = lossy ? true : nil
        if let code = exitCode, !Limits.exitCode.contains(code) {
            event.exitCode = nil
            repairs.append("exit_code \(code) is not a 32-bit integer")
        }
        if let value = cpuSeconds, !Limits.measurement.contains(value) {
            event.cpuSeconds = nil
            repairs.append("cpu_seconds \(value) is out of range")
        }
        if let value = peakMemoryMB, !Limits.measurement.contains(value) {
            event.peakMemoryMB = nil
            repairs.append("peak_memory_mb \(value) is out of range")
        }
        if !(Limits.earliest...(now + 86_400)).contains(at) {
            event.at = now
            repairs.append("at \(at) is not a time of this era: the scheduler's receipt time is used")
        }
        return (event, repairs)
    }
}

/// Text that PostgreSQL stores as it is: no NUL (which `text` and `jsonb` refuse), at most a
/// number of bytes, cut on a character boundary.
public enum StorableText {
    /// `text` without NUL (each becomes U+FFFD) and at most `maxBytes` of UTF-8; whether it changed.
    public static func make(_ text: String, maxBytes: Int) -> (text: String, changed: Bool) {
        var changed = false
        var result = text
        if result.utf8.contains(0) {
            result = String(result.unicodeScalars.map { $0 == "\0" ? "\u{FFFD}" : Character($0) })
            changed = true
        }
        if result.utf8.count > maxBytes {
            var cut = ""
            var bytes = 0
            for character in result {
                let size = character.utf8.count
                if bytes + size > maxBytes { break }
                cut.append(character)
                bytes += size
            }
            result = cut
            changed = true
        }
        return (result, changed)
    }
}

/// The end of what a program wrote, as text: the bytes are kept as they came, with every
/// invalid UTF-8 sequence and every NUL replaced by U+FFFD (and `lossy` set). A tail that
/// begins inside a multi-byte character (the cut of the byte limit) drops that fragment
/// without counting it as lossy.
public enum OutputTail {
    public static func text(_ bytes: [UInt8], truncated: Bool) -> (text: String, lossy: Bool) {
        var start = 0
        if truncated {
            // Continuation bytes (10xxxxxx) at the very start belong to a cut character.
            while start < min(bytes.count, 3), bytes[start] & 0xC0 == 0x80 { start += 1 }
        }
        let slice = bytes[start...]
        let decoded = String(decoding: slice, as: UTF8.self)
        var lossy = decoded.unicodeScalars.contains("\u{FFFD}") && !slice.containsReplacementCharacter
        var text = decoded
        if text.utf8.contains(0) {
            text = StorableText.make(text, maxBytes: Int.max).text
            lossy = true
        }
        return (text, lossy)
    }
}

extension ArraySlice<UInt8> {
    /// True when the bytes spell U+FFFD themselves (EF BF BD): then a replacement character in
    /// the decoded text may be the program's own.
    fileprivate var containsReplacementCharacter: Bool {
        guard count >= 3 else { return false }
        var index = startIndex
        while index + 2 < endIndex {
            if self[index] == 0xEF && self[index + 1] == 0xBF && self[index + 2] == 0xBD { return true }
            index += 1
        }
        return false
    }
}
