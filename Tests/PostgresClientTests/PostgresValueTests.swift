import Foundation
import PostgresClient
import Testing

@Suite struct PostgresValueTests {
    @Test func timestampsReadTheServersISOOutput() throws {
        let date = try #require(Date(postgresText: "2026-11-23 12:00:05.25+00"))
        #expect(date.timeIntervalSince1970 == 1_795_435_205.25)
        let zoned = try #require(Date(postgresText: "2026-11-23 13:00:05+01"))
        #expect(zoned.timeIntervalSince1970 == 1_795_435_205)
    }

    @Test func byteaRoundTripsThroughHex() {
        let bytes: [UInt8] = [0, 1, 0xAB, 0xFF]
        #expect(bytes.postgresText == "\\x0001abff")
        #expect([UInt8](postgresText: "\\x0001abff") == bytes)
        #expect([UInt8](postgresText: "\\x0") == nil)
    }

    @Test(arguments: ["postgres://h", "mysql://u:p@h/db", "postgres://u:p@/db", "postgresql://u:p@h:70000/db"])
    func refusesMalformedURLs(url: String) {
        #expect {
            try PostgresConfiguration(url: url)
        } throws: { error in
            (error as? PostgresError)?.code == .invalidURL
        }
    }
}
