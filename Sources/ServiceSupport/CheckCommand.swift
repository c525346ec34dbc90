import FogCore
import Foundation

/// The body of each service's `check` subcommand: read the environment, check, print, and
/// return the exit status (0 when every server answered).
public func runConnectivityCheck(services: [ServiceEnvironment.Service]) async -> Int32 {
    let environment: ServiceEnvironment
    do {
        environment = try ServiceEnvironment(environment: try ServiceSettings.environment(), required: Set(services))
    } catch {
        FileHandle.standardError.write(Data("error: \(error)\n".utf8))
        return 2
    }
    let lines = await ConnectivityCheck.run(environment, services: services)
    for line in lines { print(line.rendered) }
    return lines.allSatisfy(\.ok) ? 0 : 1
}
