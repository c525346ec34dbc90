import FogCore
import Foundation
import ServiceCommand
import Testing

/// FOG_X_FILE: how the Swarm stack hands secrets to the services (/run/secrets/...).
@Suite struct ServiceSettingsTests {
    func file(_ text: String) throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("fog-setting-\(UUID().uuidString)").path
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    @Test func aFileGivesTheVariableItsContentsWithoutTheTrailingNewline() throws {
        let path = try file("redis://u:secret@redis:6379/0\n")
        defer { try? FileManager.default.removeItem(atPath: path) }
        let environment = try ServiceSettings.environment(["FOG_REDIS_URL_FILE": path, "FOG_NODE_ZONE": "a", "OTHER_FILE": "/nowhere"])
        #expect(environment["FOG_REDIS_URL"] == "redis://u:secret@redis:6379/0")
        #expect(environment["FOG_REDIS_URL_FILE"] == nil)
        #expect(environment["FOG_NODE_ZONE"] == "a")
        #expect(environment["OTHER_FILE"] == "/nowhere", "only FOG_ variables are read from files")
    }

    @Test func bothWaysAtOnceIsRefusedByName() throws {
        let path = try file("x")
        defer { try? FileManager.default.removeItem(atPath: path) }
        #expect { try ServiceSettings.environment(["FOG_API_TOKENS": "t", "FOG_API_TOKENS_FILE": path]) } throws: { error in
            "\(error)".contains("FOG_API_TOKENS_FILE")
        }
    }

    @Test func anUnreadableFileIsRefusedByName() {
        #expect { try ServiceSettings.environment(["FOG_DATABASE_URL_FILE": "/nonexistent/secret"]) } throws: { error in
            "\(error)".contains("FOG_DATABASE_URL_FILE") && "\(error)".contains("/nonexistent/secret")
        }
    }
}
