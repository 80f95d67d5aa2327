import ChangeEvents
import ChangeLog
import Foundation
import IPC
import NATSClient
import SQLiteKit

/// `harmonylite-benchmark pipeline-cost <rows per transaction> <rows per message> <rows> [compress 1|0]`:
/// every step one row takes from the application's commit on one node to its apply on another, in one
/// process, each step a function of its own (`hl_stage_*`), for counting instructions under `valgrind
/// --tool=callgrind` (`benchmarks/pipeline-cost.sh` reads each function's inclusive cost; repeatable on a
/// busy machine). The steps are the workers' own code on real files and a real nats-server: the
/// application writes `rows` with the capture triggers, 2,000 at a time; the capturer's read of them
/// (`ChangeReader`), then their stamps and the watermark (as every 100 ms at 20,000 rows/s), the encoding
/// with and without zstd, the IPC frame to the broker (a socket pair), JetStream's async publish and its
/// acknowledgements; then on the receiving node the fetches (32 messages, as the broker's), the IPC frame
/// to the applier, decoding, applying each fetch in one transaction with the cursor, the AckAll; and the
/// writing node's own check of the same messages (its applier receives them back). What this leaves out
/// is each worker's loop (poll, heartbeats, status), which costs per wake-up rather than per row, and
/// nats-server itself: its CPU time per row is printed from /proc (noisy on a shared machine).
enum PipelineCost {
    /// A stream of this run's own (the script's nats-server serves several runs).
    static let stream = "pc-changes-\(getpid())"
    static let subject = stream + ".1"
    /// Rows the application writes between two stamps and watermarks.
    static let stampEvery = 2000

    static func run(_ arguments: [String]) throws {
        guard arguments.count >= 3, let perTransaction = Int(arguments[0]), let perMessage = Int(arguments[1]), let rows = Int(arguments[2]),
            perTransaction > 0, perMessage > 0, rows > 0
        else {
            throw BenchmarkError("usage: harmonylite-benchmark pipeline-cost <rows per transaction> <rows per message> <rows> [compress 1|0]")
        }
        let compress = arguments.dropFirst(3).first != "0"
        let directory = "/tmp/hl-pipeline-cost-\(getpid())"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        // valgrind cannot spawn a child (Foundation's Process fails on its descriptors): under it, the script
        // starts the nats-server and names it here.
        let environment = ProcessInfo.processInfo.environment
        let server = environment["HL_PIPELINE_NATS_URL"] == nil ? try StandaloneNATS(storeDirectory: directory + "/js") : nil
        defer { server?.stop() }
        let natsPID = server?.pid ?? environment["HL_PIPELINE_NATS_PID"].flatMap { Int32($0) } ?? 0
        var settings = ConnectionSettings(urls: [server?.url ?? environment["HL_PIPELINE_NATS_URL"]!], name: "pipeline-cost")
        let acks = PublishAcks()
        settings.publishAcks = acks
        // A server just started may not listen yet: up to 5 s.
        var connected: NATSConnection?
        for _ in 0..<50 where connected == nil {
            connected = try? NATSConnection.connect(settings)
            if connected == nil { Thread.sleep(forTimeInterval: 0.1) }
        }
        guard let connection = connected else { throw BenchmarkError("cannot reach the nats-server at \(settings.urls)") }
        _ = try connection.ensureStream(StreamSpecification(name: stream, subjects: [stream + ".*"], replicas: 1, maxMessages: -1), updateExisting: false)

        let origin = try Node(path: directory + "/origin.db", id: 1)
        let receiver = try Node(path: directory + "/receiver.db", id: 2)
        let application = try SQLiteDatabase(existingPath: origin.path)
        try application.execute("PRAGMA synchronous=NORMAL")
        let insert = try application.prepare("INSERT INTO bench(id, t_ns, payload) VALUES (?, ?, ?)")

        // The capturer, while the application writes: 2,000 rows at a time (~100 ms at 20,000 rows/s), read,
        // sent, then stamped with the watermark, as the capturer does every 100 ms.
        let reader = try ChangeReader(database: origin.database, installation: origin.installation)
        let stamper = StampMaterializer(database: origin.database)
        let (toBroker, atBroker) = try socketPair()
        var watermark: Int64 = 0
        var messages = 0
        var stored = 0
        let natsAtStart = processCPUSeconds(natsPID)
        var written = 0
        while written < rows {
            let chunk = min(PipelineCost.stampEvery, rows - written)
            hl_stage_00_application_writes(application, insert, from: written, rows: chunk, perTransaction: perTransaction)
            written += chunk
            while true {
                let pending = hl_stage_01_capture_read(reader, after: watermark, limit: perMessage)
                guard let through = pending.throughID else { break }
                _ = hl_stage_02_encode(pending.events, origin: 1, schemaHash: origin.installation.schemaHash)
                let payload = hl_stage_03_encode_compressed(pending.events, origin: 1, schemaHash: origin.installation.schemaHash, compress: compress)
                let messageID = "1.\(origin.installation.incarnation).1.\(watermark + 1)-\(through)"
                let publish = DataMessage.Publish(batchID: UInt64(messages), shard: 1, messageID: messageID, payload: payload)
                let received = hl_stage_04_ipc_to_broker(toBroker, atBroker, publish)
                hl_stage_05_publish(connection, received)
                stored += hl_stage_06_publish_acks(acks)
                messages += 1
                watermark = through
            }
            hl_stage_07_stamp_and_watermark(origin.database, stamper, reader, watermark: watermark)
        }
        let deadline = Date().addingTimeInterval(60)
        while stored < messages {
            guard Date() < deadline else { throw BenchmarkError("JetStream acknowledged \(stored) of \(messages)") }
            stored += hl_stage_06_publish_acks(acks)
            usleep(200)
        }
        let natsPublishSeconds = processCPUSeconds(natsPID) - natsAtStart

        // The receiving node's broker and applier, and the writing node's applier (its own messages back).
        let pull = try PullConsumer(connection: connection, stream: stream, durable: "pipeline-cost", afterSequence: 0)
        let (toApplier, atApplier) = try socketPair()
        var applied = 0
        var fetches = 0
        var sequence: UInt64 = 0
        let natsFetchStart = processCPUSeconds(natsPID)
        while sequence < UInt64(messages) {
            let fetched = hl_stage_08_fetch(pull)
            guard let last = fetched.last else { throw BenchmarkError("fetched nothing after sequence \(sequence) of \(messages)") }
            fetches += 1
            let deliveries = hl_stage_09_ipc_to_applier(
                toApplier, atApplier,
                fetched.map {
                    var delivery = DataMessage.Delivery(
                        stream: stream, sequence: $0.sequence, subject: $0.subject, payload: $0.payload, timestamp: $0.timestamp)
                    delivery.messageID = $0.messageID
                    return delivery
                })
            let batches = try hl_stage_10_decode(deliveries)
            applied += try hl_stage_11_apply(receiver.applier, batches, deliveries: deliveries)
            hl_stage_12_acknowledge(pull, through: last.sequence)
            let held = try hl_stage_13_own_check(origin.applier, batches)
            guard held == 0 else { throw BenchmarkError("the writing node took \(held) of its own events for newer") }
            let skipped = hl_stage_14_own_skip(deliveries, incarnation: origin.installation.incarnation)
            guard skipped == deliveries.count else { throw BenchmarkError("the writing node recognized \(skipped) of \(deliveries.count) of its own messages") }
            sequence = last.sequence
        }
        let natsFetchSeconds = processCPUSeconds(natsPID) - natsFetchStart
        guard applied == rows else { throw BenchmarkError("applied \(applied) of \(rows) rows") }
        print(
            "rows \(rows) messages \(messages) fetches \(fetches) rows_per_transaction \(perTransaction) rows_per_message \(perMessage) compress \(compress ? 1 : 0)"
        )
        print(
            "nats_server_cpu_us_per_row publish \(format(natsPublishSeconds * 1e6 / Double(rows), 2)) fetch \(format(natsFetchSeconds * 1e6 / Double(rows), 2))"
        )
    }

    /// A database as a node opens it: the bench table, our installation, the applier's connection.
    struct Node {
        let path: String
        let database: SQLiteDatabase
        let installation: ChangeLogInstallation
        let applier: ChangeApplier

        init(path: String, id: UInt64) throws {
            self.path = path
            guard FileManager.default.createFile(atPath: path, contents: nil) else { throw BenchmarkError("cannot create \(path)") }
            try SQLiteDatabase(existingPath: path).execute("PRAGMA journal_mode=WAL; CREATE TABLE bench(id INTEGER PRIMARY KEY, t_ns INTEGER, payload TEXT);")
            (database, installation) = try ChangeLogInstaller.open(path, node: id)
            let (applying, applyingInstallation) = try ChangeLogInstaller.open(path, node: id)
            applier = try ChangeApplier(database: applying, catalog: applyingInstallation.catalog)
        }
    }

    static func socketPair() throws -> (FrameConnection, FrameConnection) {
        var fds: [Int32] = [0, 0]
        guard socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &fds) == 0 else { throw BenchmarkError("socketpair failed") }
        for fd in fds { _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) }
        return (FrameConnection(fd: fds[0]), FrameConnection(fd: fds[1]))
    }

    /// Writes `frame` on `from` and reads it on `to`, as the non-blocking loops do.
    static func carry(_ frame: Frame, from: FrameConnection, to: FrameConnection) -> [Frame] {
        from.enqueue(frame)
        var frames: [Frame] = []
        while true {
            let done = (try? from.flush()) ?? true
            frames += (try? to.readAvailable()) ?? []
            if done && !frames.isEmpty { return frames }
        }
    }

    /// utime + stime of `pid` in seconds (10 ms ticks).
    static func processCPUSeconds(_ pid: Int32) -> Double {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
            let close = stat.lastIndex(of: ")")
        else { return 0 }
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        guard fields.count > 12, let user = Double(fields[11]), let system = Double(fields[12]) else { return 0 }
        return (user + system) / Double(sysconf(Int32(_SC_CLK_TCK)))
    }
}

// Each step on its own, never inlined, under a name callgrind prints as it is.

@inline(never) @_silgen_name("hl_stage_00_application_writes")
func hl_stage_00_application_writes(_ database: SQLiteDatabase, _ insert: SQLiteStatement, from first: Int, rows: Int, perTransaction: Int) {
    let payload = SQLiteValue.text(Array(String(repeating: "x", count: 100).utf8))
    var written = 0
    while written < rows {
        if perTransaction > 1 { try! database.execute("BEGIN") }
        for _ in 0..<min(perTransaction, rows - written) {
            written += 1
            try! insert.run([.integer(Int64(first + written)), .integer(Int64(first + written)), payload])
        }
        if perTransaction > 1 { try! database.execute("COMMIT") }
    }
}

@inline(never) @_silgen_name("hl_stage_01_capture_read")
func hl_stage_01_capture_read(_ reader: ChangeReader, after watermark: Int64, limit: Int) -> ChangeReader.Pending {
    try! reader.pending(after: watermark, limit: limit)
}

@inline(never) @_silgen_name("hl_stage_02_encode")
func hl_stage_02_encode(_ events: [ChangeEvent], origin: UInt64, schemaHash: String) -> [UInt8] {
    encodeAsTheCapturer(events, origin: origin, schemaHash: schemaHash, compress: false)
}

@inline(never) @_silgen_name("hl_stage_03_encode_compressed")
func hl_stage_03_encode_compressed(_ events: [ChangeEvent], origin: UInt64, schemaHash: String, compress: Bool) -> [UInt8] {
    encodeAsTheCapturer(events, origin: origin, schemaHash: schemaHash, compress: compress)
}

/// As the capturer: each event's shard, the cut into messages, the batch.
@inline(__always)
func encodeAsTheCapturer(_ events: [ChangeEvent], origin: UInt64, schemaHash: String, compress: Bool) -> [UInt8] {
    var shards: UInt64 = 0
    for event in events { shards &+= Shard.of(table: event.table, key: event.key, shards: 1) }
    let cut = MessageCutting(maximumBytes: MessageCutting.eventBytes(inMessagesOf: DataMessage.maximumPublishBytes)).cut(events)
    precondition(cut.messages.count <= 1 && shards == UInt64(events.count))
    return ChangeBatch(origin: origin, schemaHash: schemaHash, events: events).encoded(compress: compress)
}

@inline(never) @_silgen_name("hl_stage_04_ipc_to_broker")
func hl_stage_04_ipc_to_broker(_ from: FrameConnection, _ to: FrameConnection, _ publish: DataMessage.Publish) -> DataMessage.Publish {
    let frames = PipelineCost.carry(DataMessage.publish(publish).frame, from: from, to: to)
    guard frames.count == 1, case .publish(let received) = try! DataMessage(frame: frames[0]) else { fatalError("IPC to the broker") }
    return received
}

@inline(never) @_silgen_name("hl_stage_05_publish")
func hl_stage_05_publish(_ connection: NATSConnection, _ publish: DataMessage.Publish) {
    try! connection.publishAsync(subject: PipelineCost.subject, payload: publish.payload, messageID: publish.messageID)
}

@inline(never) @_silgen_name("hl_stage_06_publish_acks")
func hl_stage_06_publish_acks(_ acks: PublishAcks) -> Int {
    acks.drain().count
}

@inline(never) @_silgen_name("hl_stage_07_stamp_and_watermark")
func hl_stage_07_stamp_and_watermark(_ database: SQLiteDatabase, _ stamper: StampMaterializer, _ reader: ChangeReader, watermark: Int64) {
    // As the capturer: with the stamps its reader computed.
    try! database.transaction { () throws(SQLiteError) in
        _ = try stamper.materialize(known: reader.stamps, onlyKnown: true)
        try PublishWatermark.write(watermark, to: database)
    }
}

@inline(never) @_silgen_name("hl_stage_08_fetch")
func hl_stage_08_fetch(_ pull: PullConsumer) -> [PullConsumer.Message] {
    try! pull.fetch(maximum: DataMessage.maximumDeliveriesPerMessage, maximumBytes: DataMessage.maximumDeliveryBytes, waitMilliseconds: 1000)
}

@inline(never) @_silgen_name("hl_stage_09_ipc_to_applier")
func hl_stage_09_ipc_to_applier(_ from: FrameConnection, _ to: FrameConnection, _ deliveries: [DataMessage.Delivery]) -> [DataMessage.Delivery] {
    let frames = PipelineCost.carry(DataMessage.deliver(deliveries).frame, from: from, to: to)
    guard frames.count == 1, case .deliver(let received) = try! DataMessage(frame: frames[0]) else { fatalError("IPC to the applier") }
    return received
}

@inline(never) @_silgen_name("hl_stage_10_decode")
func hl_stage_10_decode(_ deliveries: [DataMessage.Delivery]) throws -> [ChangeBatch] {
    try deliveries.map { try ChangeBatch(decoding: $0.payload) }
}

@inline(never) @_silgen_name("hl_stage_11_apply")
func hl_stage_11_apply(_ applier: ChangeApplier, _ batches: [ChangeBatch], deliveries: [DataMessage.Delivery]) throws -> Int {
    var events: [ChangeEvent] = []
    var sources: [ChangeApplier.EventSource] = []
    for (batch, delivery) in zip(batches, deliveries) {
        events += batch.events
        sources += Array(
            repeating: .init(stream: delivery.stream, sequence: delivery.sequence, origin: batch.origin, schemaHash: batch.schemaHash),
            count: batch.events.count)
    }
    return try applier.apply(events, cursor: [PipelineCost.stream: deliveries.last!.sequence], sources: sources).applied
}

@inline(never) @_silgen_name("hl_stage_12_acknowledge")
func hl_stage_12_acknowledge(_ pull: PullConsumer, through sequence: UInt64) {
    pull.acknowledge(through: sequence)
}

@inline(never) @_silgen_name("hl_stage_13_own_check")
func hl_stage_13_own_check(_ applier: ChangeApplier, _ batches: [ChangeBatch]) throws -> Int {
    try applier.notYetHeld(inEach: batches.map(\.events)).reduce(0) { $0 + $1.count }
}

/// What the writing node's applier does with its own messages now (`ApplyService.isHeldHere`): the id and
/// the subject, per message; nothing per row.
@inline(never) @_silgen_name("hl_stage_14_own_skip")
func hl_stage_14_own_skip(_ deliveries: [DataMessage.Delivery], incarnation: String) -> Int {
    let ownSubjects: Set<String> = [PipelineCost.subject]
    let prefix = MessageIdentity.heldPrefix(node: 1, incarnation: incarnation)
    return deliveries.filter { delivery in
        delivery.republishedFrom == nil
            && MessageIdentity.isHeld(messageID: delivery.messageID, publisher: ownSubjects.contains(delivery.subject) ? 1 : nil, node: 1, heldPrefix: prefix)
    }.count
}
