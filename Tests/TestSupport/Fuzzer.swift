import FogCore
import Foundation

/// A deterministic mutator of text (SplitMix64): numbers become extremes, strings become NUL,
/// lone surrogates or long runs, and bytes are flipped, inserted or cut. For the fuzz tests of
/// every decoder of outside input (FogCoreTests, SchedulerTests).
public struct Fuzzer {
    private var random: SplitMix64

    public init(seed: UInt64) { random = SplitMix64(seed: seed &* 0x9E37_79B9_7F4A_7C15) }

    public mutating func next() -> UInt64 { random.next() }

    public mutating func int(_ range: ClosedRange<Int>) -> Int { range.lowerBound + Int(next() % UInt64(range.count)) }
    public mutating func chance(_ p: Double) -> Bool { Double(next() % 10_000) / 10_000 < p }
    public mutating func pick<T>(_ items: [T]) -> T { items[int(0...(items.count - 1))] }

    public static let numbers = [
        "1e300", "-1e300", "1e400", "-0", "9223372036854775807", "9223372036854775808", "-9223372036854775809",
        "4294967296", "2147483648", "1.5", "-1", "0", "NaN", "Infinity", "null", "true", "\"7\"", "[]", "{}", "1e-320",
    ]
    public static let strings = [
        #""\u0000""#, #""""#, #""a b""#, #""\ud800""#, #""LD_PRELOAD""#, #""x\u0000y""#, "1e300", "null", "[]",
        "\"" + String(repeating: "a", count: 70_000) + "\"", #""../../etc/passwd""#, #""é""#,
    ]

    /// One to three mutations of `text`.
    public mutating func mutate(_ text: String) -> String {
        var bytes = Array(text.utf8)
        for _ in 0..<int(1...3) {
            switch int(0...5) {
            case 0, 1: bytes = replaceToken(in: bytes, number: true)
            case 2: bytes = replaceToken(in: bytes, number: false)
            case 3 where !bytes.isEmpty: bytes[int(0...(bytes.count - 1))] = UInt8(truncatingIfNeeded: next())
            case 4: bytes.insert(pick(Array("{}[],:\"\\0-e.".utf8)), at: int(0...bytes.count))
            default: if !bytes.isEmpty { bytes.removeSubrange(int(0...(bytes.count - 1))...) }
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Replaces one number (or one quoted string) in the text with an extreme value.
    private mutating func replaceToken(in bytes: [UInt8], number: Bool) -> [UInt8] {
        var spans: [Range<Int>] = []
        var index = 0
        while index < bytes.count {
            let byte = bytes[index]
            if number, (48...57).contains(byte) || byte == UInt8(ascii: "-") {
                let start = index
                while index < bytes.count, Array("0123456789.eE+-".utf8).contains(bytes[index]) { index += 1 }
                spans.append(start..<index)
            } else if !number, byte == UInt8(ascii: "\"") {
                let start = index
                index += 1
                while index < bytes.count, bytes[index] != UInt8(ascii: "\"") { index += bytes[index] == UInt8(ascii: "\\") ? 2 : 1 }
                index = min(index + 1, bytes.count)
                spans.append(start..<index)
            } else {
                index += 1
            }
        }
        guard !spans.isEmpty else { return bytes }
        var result = bytes
        result.replaceSubrange(pick(spans), with: Array(pick(number ? Self.numbers : Self.strings).utf8))
        return result
    }
}
