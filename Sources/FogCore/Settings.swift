import Foundation

/// Reads typed settings from `FOG_*` environment variables (or flags folded into the same
/// dictionary), naming the variable and what it should look like when a value is wrong.
public struct Settings: Sendable {
    public struct Invalid: Error, Sendable, Equatable, CustomStringConvertible {
        public let name: String
        public let value: String
        public let expected: String
        public init(name: String, value: String, expected: String) {
            self.name = name
            self.value = value
            self.expected = expected
        }

        public var description: String { "\(name)='\(value.prefix(80))' is invalid: expected \(expected)" }
    }

    public let values: [String: String]

    public init(_ values: [String: String]) { self.values = values }

    /// The trimmed value, nil when unset or blank.
    public func string(_ name: String) -> String? {
        guard let raw = values[name] else { return nil }
        let text = raw.trimmingCharacters(in: .whitespaces)
        return text.isEmpty ? nil : text
    }

    public func int(_ name: String, default fallback: Int, in range: ClosedRange<Int> = Int.min...Int.max) throws(Invalid) -> Int {
        guard let text = string(name) else { return fallback }
        guard let value = Int(text), range.contains(value) else {
            throw Invalid(name: name, value: text, expected: "an integer in \(range.lowerBound)...\(range.upperBound)")
        }
        return value
    }

    public func double(_ name: String, default fallback: Double) throws(Invalid) -> Double {
        guard let text = string(name) else { return fallback }
        guard let value = Double(text), value.isFinite, value >= 0 else {
            throw Invalid(name: name, value: text, expected: "a non-negative number")
        }
        return value
    }

    public func bool(_ name: String, default fallback: Bool) throws(Invalid) -> Bool {
        guard let text = string(name)?.lowercased() else { return fallback }
        switch text {
        case "1", "true", "yes", "on": return true
        case "0", "false", "no", "off": return false
        default: throw Invalid(name: name, value: text, expected: "true or false")
        }
    }

    /// `250ms`, `5s`, `2m`, `1h`, or a bare number of seconds (`1.5`).
    public func duration(_ name: String, default fallback: Duration) throws(Invalid) -> Duration {
        guard let text = string(name) else { return fallback }
        guard let value = Self.parseDuration(text), value > .zero else {
            throw Invalid(name: name, value: text, expected: "a positive duration such as 500ms, 5s or 2m")
        }
        return value
    }

    /// The longest duration any setting takes: ten years, far below what a conversion to
    /// milliseconds could overflow.
    public static let maxDuration: Duration = .seconds(315_360_000)

    /// A duration as the settings write it, or nil: not a number, negative, or longer than
    /// `maxDuration` (so that `1e300s` is refused rather than trapping in a conversion).
    public static func parseDuration(_ text: String) -> Duration? {
        let units: [(String, Double)] = [("ms", 0.001), ("s", 1), ("m", 60), ("h", 3600)]
        var number = Double(text)
        var scale = 1.0
        for (suffix, unitScale) in units where number == nil && text.hasSuffix(suffix) {
            number = Double(text.dropLast(suffix.count))
            scale = unitScale
        }
        guard let number, number.isFinite, number >= 0 else { return nil }
        let milliseconds = number * scale * 1000
        guard milliseconds <= Double(maxDuration.components.seconds) * 1000 else { return nil }
        return .milliseconds(Int64(milliseconds.rounded()))
    }

    /// A comma-separated list.
    public func list(_ name: String) -> [String] {
        (string(name) ?? "").split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
    }

    /// `key=value,key=value`.
    public func map(_ name: String) throws(Invalid) -> [String: String] {
        var result: [String: String] = [:]
        for item in list(name) {
            let parts = item.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            guard parts.count == 2, !parts[0].isEmpty else {
                throw Invalid(name: name, value: item, expected: "key=value pairs separated by commas")
            }
            result[parts[0]] = parts[1]
        }
        return result
    }
}
