import FogCore
import Foundation

/// The body of each service's `check` subcommand: read the environment, run the probes,
/// print, and return the exit status (0 when every server answered).
public func runConnectivityCheck(_ probes: [(ServiceEnvironment.Service, ConnectivityCheck.Probe)]) async -> Int32 {
    let environment: ServiceEnvironment
    do {
        environment = try ServiceEnvironment(environment: try ServiceSettings.environment(), required: Set(probes.map(\.0)))
    } catch {
        FileHandle.standardError.write(Data("error: \(error)\n".utf8))
        return 2
    }
    let lines = await ConnectivityCheck.run(environment, probes: probes)
    for line in lines { print(line.rendered) }
    return lines.allSatisfy(\.ok) ? 0 : 1
}
