import Foundation

/// RFC 3339 times as the API writes and reads them (UTC, `Z`, optional fractional seconds).
public enum RFC3339 {
    /// Seconds since 1970 of `text`, or nil when it is not an RFC 3339 time.
    public static func parse(_ text: String) -> Double? {
        let plain = ISO8601DateFormatter()
        plain.formatOptions = [.withInternetDateTime]
        if let date = plain.date(from: text) { return date.timeIntervalSince1970 }
        let fractional = ISO8601DateFormatter()
        fractional.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return fractional.date(from: text)?.timeIntervalSince1970
    }

    /// `seconds` since 1970 as `2026-11-23T12:00:05.123Z`.
    public static func format(_ seconds: Double) -> String {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return formatter.string(from: Date(timeIntervalSince1970: seconds))
    }
}
