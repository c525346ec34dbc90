import Foundation

/// A Swift value that can be sent as a statement parameter, in PostgreSQL's text format.
public protocol PostgresEncodable: Sendable {
    var postgresText: String { get }
}

/// A Swift value that can be read from a column in PostgreSQL's text format.
public protocol PostgresDecodable {
    init?(postgresText text: String)
}

public typealias PostgresCodable = PostgresEncodable & PostgresDecodable

extension String: PostgresCodable {
    public var postgresText: String { self }
    public init?(postgresText text: String) { self = text }
}

extension Int: PostgresCodable {
    public var postgresText: String { String(self) }
    public init?(postgresText text: String) { self.init(text) }
}

extension Int64: PostgresCodable {
    public var postgresText: String { String(self) }
    public init?(postgresText text: String) { self.init(text) }
}

extension Int32: PostgresCodable {
    public var postgresText: String { String(self) }
    public init?(postgresText text: String) { self.init(text) }
}

extension Double: PostgresCodable {
    public var postgresText: String { String(self) }
    public init?(postgresText text: String) {
        switch text {
        case "NaN": self = .nan
        case "Infinity": self = .infinity
        case "-Infinity": self = -.infinity
        default: self.init(text)
        }
    }
}

extension Bool: PostgresCodable {
    public var postgresText: String { self ? "t" : "f" }
    public init?(postgresText text: String) {
        switch text {
        case "t", "true": self = true
        case "f", "false": self = false
        default: return nil
        }
    }
}

extension UUID: PostgresCodable {
    public var postgresText: String { uuidString.lowercased() }
    public init?(postgresText text: String) { self.init(uuidString: text) }
}

/// `timestamptz` values, to the microsecond (PostgreSQL's precision). Parameters are sent as
/// `YYYY-MM-DD HH:MM:SS.ffffff+00`; columns are read in the server's ISO output, any offset.
extension Date: PostgresCodable {
    public var postgresText: String {
        let micros = Int64((timeIntervalSince1970 * 1_000_000).rounded())
        var seconds = time_t(micros >= 0 ? micros / 1_000_000 : (micros - 999_999) / 1_000_000)
        let fraction = micros - Int64(seconds) * 1_000_000
        var parts = tm()
        gmtime_r(&seconds, &parts)
        return String(
            format: "%04d-%02d-%02d %02d:%02d:%02d.%06lld+00", parts.tm_year + 1900, parts.tm_mon + 1,
            parts.tm_mday, parts.tm_hour, parts.tm_min, parts.tm_sec, fraction)
    }

    public init?(postgresText text: String) {
        // 2026-11-23 12:00:05[.123456](+|-)HH[:MM[:SS]]
        let bytes = Array(text.utf8)
        func number(_ range: Range<Int>) -> Int32? {
            guard range.upperBound <= bytes.count else { return nil }
            var value: Int32 = 0
            for byte in bytes[range] {
                guard (0x30...0x39).contains(byte) else { return nil }
                value = value * 10 + Int32(byte - 0x30)
            }
            return value
        }
        guard bytes.count >= 22, let year = number(0..<4), let month = number(5..<7), let day = number(8..<10),
            let hour = number(11..<13), let minute = number(14..<16), let second = number(17..<19)
        else { return nil }
        var index = 19
        var micros: Int64 = 0
        if index < bytes.count, bytes[index] == UInt8(ascii: ".") {
            index += 1
            var digits = 0
            while index < bytes.count, (0x30...0x39).contains(bytes[index]) {
                if digits < 6 { micros = micros * 10 + Int64(bytes[index] - 0x30) }
                digits += 1
                index += 1
            }
            for _ in digits..<max(digits, 6) { micros *= 10 }
        }
        guard index < bytes.count, bytes[index] == UInt8(ascii: "+") || bytes[index] == UInt8(ascii: "-") else { return nil }
        let sign: Int64 = bytes[index] == UInt8(ascii: "+") ? 1 : -1
        let zone = bytes[(index + 1)...].split(separator: UInt8(ascii: ":")).map { Int64(String(decoding: $0, as: UTF8.self)) }
        guard !zone.isEmpty, zone.allSatisfy({ $0 != nil }) else { return nil }
        let offset = zone.enumerated().reduce(Int64(0)) { $0 + $1.element! * [3600, 60, 1][min($1.offset, 2)] }
        var parts = tm()
        parts.tm_year = year - 1900
        parts.tm_mon = month - 1
        parts.tm_mday = day
        parts.tm_hour = hour
        parts.tm_min = minute
        parts.tm_sec = second
        let utc = Int64(timegm(&parts)) - sign * offset
        self.init(timeIntervalSince1970: Double(utc) + Double(micros) / 1_000_000)
    }
}

/// `bytea`, in the hex format (`\x0a1b`).
extension Array: PostgresEncodable where Element == UInt8 {
    public var postgresText: String {
        "\\x" + map { String(format: "%02x", $0) }.joined()
    }
}

extension Array: PostgresDecodable where Element == UInt8 {
    public init?(postgresText text: String) {
        guard text.hasPrefix("\\x"), text.count % 2 == 0 else { return nil }
        var bytes: [UInt8] = []
        bytes.reserveCapacity((text.count - 2) / 2)
        var index = text.index(text.startIndex, offsetBy: 2)
        while index < text.endIndex {
            let next = text.index(index, offsetBy: 2)
            guard let byte = UInt8(text[index..<next], radix: 16) else { return nil }
            bytes.append(byte)
            index = next
        }
        self = bytes
    }
}

/// An array parameter (`$1::text[]`, `$1::uuid[]`) in PostgreSQL's array literal syntax.
public struct PostgresTextArray: PostgresEncodable {
    public let elements: [String]
    public init(_ elements: [String]) { self.elements = elements }

    public var postgresText: String {
        let quoted = elements.map { element in
            "\"" + element.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + "\""
        }
        return "{" + quoted.joined(separator: ",") + "}"
    }
}
