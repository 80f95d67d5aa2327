// swift-tools-version:6.0
import PackageDescription

// One executable per process (supervisor + four workers), small libraries with one job each,
// and system-library targets for the C libraries Debian ships.
let package = Package(
    name: "harmonylite",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "harmonylite", targets: ["supervisor"]),
        .executable(name: "harmonylite-capturer", targets: ["capturer"]),
        .executable(name: "harmonylite-applier", targets: ["applier"]),
        .executable(name: "harmonylite-broker", targets: ["broker"]),
        .executable(name: "harmonylite-snapshotter", targets: ["snapshotter"]),
        .executable(name: "harmonylite-benchmark", targets: ["benchmark"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/LebJe/TOMLKit", from: "0.6.0"),
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift", from: "0.2.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
    ],
    targets: [
        // C libraries from Debian packages.
        .systemLibrary(name: "CSQLite", pkgConfig: "sqlite3", providers: [.apt(["libsqlite3-dev"])]),
        .systemLibrary(name: "CNats", pkgConfig: "libnats", providers: [.apt(["libnats-dev"])]),
        .systemLibrary(name: "CSystemd", pkgConfig: "libsystemd", providers: [.apt(["libsystemd-dev"])]),
        .systemLibrary(name: "COpenSSL", pkgConfig: "libcrypto", providers: [.apt(["libssl-dev"])]),
        .systemLibrary(name: "CZstd", pkgConfig: "libzstd", providers: [.apt(["libzstd-dev"])]),
        .systemLibrary(name: "CCurl", pkgConfig: "libcurl", providers: [.apt(["libcurl4-openssl-dev"])]),
        // fork/exec with limits, signalfd, prctl: Linux calls Swift cannot reach (fork, _GNU_SOURCE, variadic).
        .target(name: "CPosix"),

        // Shared libraries.
        // The system-call layer: SystemError, the retrying call wrapper, owning descriptors, the clocks.
        .target(name: "SystemCalls", dependencies: ["CPosix"]),
        .target(name: "BinaryCoding"),
        .target(name: "IPC", dependencies: ["SystemCalls", "BinaryCoding"]),
        .target(name: "Signals", dependencies: ["SystemCalls", "CPosix"]),
        .target(name: "Logs", dependencies: [.product(name: "Logging", package: "swift-log")]),
        .target(name: "HarmonyConfig", dependencies: ["SystemCalls", "TOMLKit", "Logs"]),
        .target(name: "Supervision", dependencies: ["HarmonyConfig", "IPC", "BrokerCore", "SchemaRegistry", .product(name: "Logging", package: "swift-log")]),
        .target(name: "ApplyPipeline", dependencies: ["IPC"]),
        .target(name: "SQLiteKit", dependencies: ["CSQLite"]),
        .target(name: "NKeys", dependencies: ["SystemCalls", "COpenSSL"]),
        .target(name: "ChangeEvents", dependencies: ["BinaryCoding", "SQLiteKit", "CZstd"]),
        .target(name: "ChangeLog", dependencies: ["SystemCalls", "SQLiteKit", "ChangeEvents", "COpenSSL"]),
        .target(
            name: "Snapshots",
            dependencies: [
                "SystemCalls", "SQLiteKit", "ChangeLog", "ChangeEvents", "Digests", "NATSClient", "NodeNATS", "HarmonyConfig", "CurlTransfer", "Logs",
            ]),
        .target(name: "CurlTransfer", dependencies: ["SystemCalls", "CCurl", "Logs"]),
        .target(name: "Digests", dependencies: ["COpenSSL"]),
        .target(name: "SchemaRegistry"),
        .target(name: "NATSClient", dependencies: ["SystemCalls", "CNats", "Logs", "Digests", "NKeys"]),
        // What a node's configuration means for NATS: its connection settings, its shard streams, and the
        // credentials derived from the cluster secret.
        .target(name: "NodeNATS", dependencies: ["SystemCalls", "NATSClient", "HarmonyConfig", "Digests", "NKeys"]),
        // Pure cores of the workers: events in, actions out, time passed in; no I/O.
        .target(name: "CapturePipeline", dependencies: ["IPC"]),
        .target(name: "BrokerCore", dependencies: ["IPC"]),
        .target(name: "SnapshotPlanner", dependencies: [.product(name: "Logging", package: "swift-log")]),
        // /metrics, /health, -status and sleep_timeout: what the supervisor knows, as metrics and reports.
        .target(
            name: "Operability", dependencies: ["SystemCalls", "IPC", "HarmonyConfig", "SQLiteKit", .product(name: "Prometheus", package: "swift-prometheus")]),
        .target(
            name: "WorkerRuntime",
            dependencies: ["SystemCalls", "IPC", "HarmonyConfig", "Logs", "Signals", "CPosix", .product(name: "Logging", package: "swift-log")]
        ),

        // Processes.
        .executableTarget(
            name: "supervisor",
            dependencies: [
                "SystemCalls", "IPC", "HarmonyConfig", "Supervision", "Logs", "Signals", "CPosix", "CSystemd", "SQLiteKit", "ChangeLog", "ChangeEvents",
                "NKeys",
                "NATSClient", "NodeNATS", "Snapshots", "SchemaRegistry", "Operability", "CurlTransfer",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .executableTarget(
            name: "capturer",
            dependencies: [
                "SystemCalls", "WorkerRuntime", "CapturePipeline", "IPC", "HarmonyConfig", "Signals", "CPosix", "SQLiteKit", "ChangeLog", "ChangeEvents",
                .product(name: "Logging", package: "swift-log"),
            ]),
        .executableTarget(
            name: "applier",
            dependencies: [
                "SystemCalls", "WorkerRuntime", "ApplyPipeline", "IPC", "HarmonyConfig", "Signals", "SQLiteKit", "ChangeLog", "ChangeEvents",
                .product(name: "Logging", package: "swift-log"),
            ]),
        .executableTarget(
            name: "broker",
            dependencies: [
                "SystemCalls", "WorkerRuntime", "BrokerCore", "ChangeEvents", "IPC", "HarmonyConfig", "Logs", "NATSClient", "NodeNATS", "NKeys", "Signals",
                .product(name: "Logging", package: "swift-log"),
            ]),
        .executableTarget(
            name: "snapshotter",
            dependencies: [
                "SystemCalls", "ChangeEvents", "WorkerRuntime", "SnapshotPlanner", "IPC", "HarmonyConfig", "NATSClient", "NodeNATS", "Signals", "SQLiteKit",
                "ChangeLog", "Snapshots", "SchemaRegistry", "Logs", .product(name: "Logging", package: "swift-log"),
            ]),
        // What applying one row costs (ChangeApplier into a temporary database): not part of a node.
        .executableTarget(name: "applier-benchmark", dependencies: ["SQLiteKit", "ChangeLog", "ChangeEvents"]),
        // The replication benchmark (benchmarks/replication.sh): not part of a node.
        .executableTarget(
            name: "benchmark",
            dependencies: [
                "SQLiteKit", "ChangeLog", "ChangeEvents", "HarmonyConfig", "IPC", "NATSClient", "Signals", "Snapshots",
                .product(name: "Histogram", package: "hdrhistogram-swift"),
            ]
        ),

        // Tests: unit targets per library (no processes, seconds), one integration target for processes and clusters.
        .target(name: "TestSupport", path: "Tests/TestSupport"),
        .testTarget(name: "IPCTests", dependencies: ["IPC", "BinaryCoding", "SystemCalls", "TestSupport"]),
        .testTarget(name: "HarmonyConfigTests", dependencies: ["HarmonyConfig", "Logs", "TestSupport"]),
        .testTarget(name: "LogsTests", dependencies: ["Logs", "ChangeEvents", "TestSupport"]),
        .testTarget(
            name: "SupervisionTests", dependencies: ["Supervision", "HarmonyConfig", "IPC", "TestSupport", .product(name: "Logging", package: "swift-log")]),
        .testTarget(name: "ApplyPipelineTests", dependencies: ["ApplyPipeline"]),
        .testTarget(name: "ChangeEventsTests", dependencies: ["BinaryCoding", "ChangeEvents", "SQLiteKit", "TestSupport"]),
        .testTarget(name: "ChangeLogTests", dependencies: ["ChangeLog", "ChangeEvents", "SQLiteKit", "TestSupport"]),
        .testTarget(name: "NKeysTests", dependencies: ["NKeys", "TestSupport"]),
        .testTarget(name: "WorkerRuntimeTests", dependencies: ["WorkerRuntime"]),
        .testTarget(name: "CapturePipelineTests", dependencies: ["CapturePipeline", "IPC"]),
        .testTarget(name: "BrokerCoreTests", dependencies: ["BrokerCore", "IPC"]),
        .testTarget(name: "SnapshotPlannerTests", dependencies: ["SnapshotPlanner", .product(name: "Logging", package: "swift-log")]),
        .testTarget(name: "SchemaRegistryTests", dependencies: ["SchemaRegistry"]),
        .testTarget(name: "OperabilityTests", dependencies: ["Operability", "IPC", "HarmonyConfig", "SQLiteKit", "TestSupport"]),
        .testTarget(name: "SQLiteKitTests", dependencies: ["SQLiteKit", "TestSupport"]),
        .testTarget(name: "NATSClientTests", dependencies: ["NATSClient", "NodeNATS", "TestSupport"]),
        .testTarget(name: "FaultPlanTests", dependencies: ["TestSupport"]),
        .testTarget(
            name: "SnapshotsTests",
            dependencies: ["Snapshots", "ChangeLog", "ChangeEvents", "SQLiteKit", "NATSClient", "NodeNATS", "CurlTransfer", "TestSupport"]),
        .testTarget(
            name: "IntegrationTests",
            dependencies: [
                "IPC", "HarmonyConfig", "Logs", "SQLiteKit", "ChangeLog", "ChangeEvents", "NATSClient", "NodeNATS", "NKeys", "Snapshots", "CurlTransfer",
                "TestSupport",
            ]
        ),
    ]
)
