import FogCore
import Foundation

/// The process environment as the services read their settings: every `FOG_X_FILE` variable
/// gives `FOG_X` the contents of that file (trailing newline removed), so that secrets can come
/// from files such as Docker Swarm's `/run/secrets/...` instead of the environment. A variable
/// set both ways, or a file that cannot be read, is an error that names it.
public enum ServiceSettings {
    public static func environment(_ base: [String: String] = ProcessInfo.processInfo.environment) throws(Settings.Invalid) -> [String:
        String]
    {
        var result = base
        for (name, path) in base where name.hasPrefix("FOG_") && name.hasSuffix("_FILE") && !path.isEmpty {
            let target = String(name.dropLast("_FILE".count))
            if let direct = base[target], !direct.isEmpty {
                throw Settings.Invalid(name: name, value: path, expected: "either \(target) or \(name), not both")
            }
            guard let data = FileManager.default.contents(atPath: path), let text = String(data: data, encoding: .utf8) else {
                throw Settings.Invalid(name: name, value: path, expected: "a readable UTF-8 file")
            }
            result[target] = text.hasSuffix("\n") ? String(text.dropLast()) : text
            result[name] = nil
        }
        return result
    }
}
