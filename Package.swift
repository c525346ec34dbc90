// swift-tools-version:6.0
import PackageDescription

// One target per room, arrows only downwards (docs/ARCHITECTURE.md):
// C system libraries -> client libraries -> FogCore (pure) -> services -> thin executables.
let package = Package(
    name: "FogScheduler",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "scheduler", targets: ["scheduler"]),
        .executable(name: "fog-node", targets: ["fog-node"]),
        .executable(name: "clusterctl", targets: ["clusterctl"]),
        .executable(name: "fog-bench", targets: ["fog-bench"]),
        .library(name: "AMQPClient", targets: ["AMQPClient"]),
        .library(name: "RedisClient", targets: ["RedisClient"]),
        .library(name: "PostgresClient", targets: ["PostgresClient"]),
        .library(name: "FogCore", targets: ["FogCore"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.6.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.1.0"),
        .package(url: "https://github.com/apple/swift-collections.git", from: "1.1.0"),
    ],
    targets: [
        // C libraries from Debian, wrapped as they are: a modulemap and a shim header each.
        .systemLibrary(
            name: "CRabbitMQ", path: "Sources/CRabbitMQ", pkgConfig: "librabbitmq",
            providers: [.apt(["librabbitmq-dev"])]),
        .systemLibrary(
            name: "CHiredis", path: "Sources/CHiredis", pkgConfig: "hiredis",
            providers: [.apt(["libhiredis-dev"])]),
        .systemLibrary(
            name: "CLibPQ", path: "Sources/CLibPQ", pkgConfig: "libpq",
            providers: [.apt(["libpq-dev"])]),
        // glibc's and Linux's calls for confining a task (no_new_privs, memfd, close_range),
        // which Swift's Glibc module leaves out: a header of static inline wrappers, no library.
        .systemLibrary(name: "CSandbox", path: "Sources/CSandbox"),

        // What the three clients and their callers share: a thread of their own for blocking C
        // calls, backoff, retrying with one log line per outage.
        .target(name: "ClientSupport", dependencies: [.product(name: "Logging", package: "swift-log")]),
        .target(
            name: "AMQPClient",
            dependencies: ["CRabbitMQ", "ClientSupport", .product(name: "Logging", package: "swift-log")]),
        .target(
            name: "RedisClient",
            dependencies: ["CHiredis", "ClientSupport", .product(name: "Logging", package: "swift-log")]),
        .target(
            name: "PostgresClient",
            dependencies: ["CLibPQ", "ClientSupport", .product(name: "Logging", package: "swift-log")]),

        // The pure core: model, wire messages, configuration. No I/O, no clock reads.
        .target(name: "FogCore"),
        // The discrete-event simulator that runs FogCore's placement policies on a virtual clock.
        .target(name: "FogSimulator", dependencies: ["FogCore", .product(name: "HeapModule", package: "swift-collections")]),

        // Running a program with a deadline and its output captured: rabbitmqctl for clusterctl,
        // the task's command for the fog node, the service binaries for the tests.
        .target(name: "Spawn", dependencies: ["ClientSupport"]),
        // What the three executables share, without any client: reading FOG_* settings (and
        // FOG_X_FILE) and the `check` command that each runs with its own probes.
        .target(name: "ServiceCommand", dependencies: ["FogCore"]),
        // The RabbitMQ topology of DESIGN.md §4, for those who declare it: the schedulers (and the tests).
        .target(name: "BrokerTopology", dependencies: ["FogCore", "AMQPClient"]),

        // What processes agree on through Redis: the one lease election, used by the scheduler
        // replicas for their leader and by clusterctl for the RabbitMQ master.
        .target(
            name: "Coordination",
            dependencies: ["FogCore", "RedisClient", "ClientSupport", .product(name: "Logging", package: "swift-log")]),

        // clusterctl's adapters and loop: Redis membership and election, rabbitmqctl.
        .target(
            name: "ClusterCtl",
            dependencies: [
                "FogCore", "RedisClient", "Spawn", "ClientSupport", "Coordination",
                .product(name: "Logging", package: "swift-log"),
            ]),

        // The scheduler service: store, HTTP API, leader election, dispatcher, event consumer.
        .target(
            name: "Scheduler",
            dependencies: [
                "FogCore", "AMQPClient", "RedisClient", "PostgresClient", "ClientSupport", "BrokerTopology", "Coordination",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Logging", package: "swift-log"),
            ]),
        // The fog node: registration, heartbeats, consuming its queues, running attempts.
        .target(
            name: "FogNode",
            dependencies: [
                "FogCore", "AMQPClient", "RedisClient", "Spawn", "ClientSupport", "CSandbox",
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
            ]),

        .executableTarget(
            name: "scheduler",
            dependencies: [
                "Scheduler", "ServiceCommand", "PostgresClient", "AMQPClient", "RedisClient", "FogCore", "FogSimulator",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ]),
        .executableTarget(
            name: "fog-node",
            dependencies: [
                "FogNode", "ServiceCommand", "FogCore", "AMQPClient", "RedisClient",
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ]),
        .executableTarget(
            name: "clusterctl",
            dependencies: [
                "ClusterCtl", "ServiceCommand", "FogCore", "RedisClient",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ]),
        .executableTarget(
            name: "fog-bench",
            dependencies: [
                "AMQPClient",
                "ClientSupport",
                "PostgresClient",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            path: "Benchmarks/fog-bench"),

        .testTarget(name: "ClientSupportTests", dependencies: ["ClientSupport"]),
        .testTarget(
            name: "CoordinationTests",
            dependencies: ["Coordination", "FogCore", "RedisClient", "TestSupport", .product(name: "Logging", package: "swift-log")]),
        .testTarget(name: "AMQPClientTests", dependencies: ["AMQPClient", "TestSupport"]),
        .testTarget(name: "RedisClientTests", dependencies: ["RedisClient", "TestSupport"]),
        .testTarget(name: "PostgresClientTests", dependencies: ["PostgresClient", "TestSupport"]),
        .testTarget(name: "FogCoreTests", dependencies: ["FogCore", "TestSupport"]),
        .testTarget(name: "FogSimulatorTests", dependencies: ["FogSimulator", "FogCore"]),
        // The fog node's decisions and sandbox parts, without servers; its system tests, which
        // need a scheduler, are in SchedulerTests.
        .testTarget(name: "FogNodeTests", dependencies: ["FogNode", "FogCore"]),
        .testTarget(
            name: "ClusterCtlTests",
            dependencies: ["ClusterCtl", "ClientSupport", "TestSupport", "AMQPClient", "FogCore", "RedisClient", "Spawn"]),
        .testTarget(
            name: "SchedulerTests",
            dependencies: [
                "Scheduler", "FogNode", "TestSupport", "AMQPClient", "BrokerTopology", "FogCore", "PostgresClient", "RedisClient",
                "Spawn", "ServiceCommand", .product(name: "Logging", package: "swift-log"),
            ]),
        // Finds the real test services (FOG_TEST_* variables) and kills their processes.
        .target(name: "TestSupport", dependencies: ["Spawn", "FogCore"], path: "Tests/TestSupport"),
    ]
)
