import FogCore
import Foundation
import Testing

@testable import FogSimulator

@Suite struct SimulationTests {
    @Test func placeholder() {}
}
