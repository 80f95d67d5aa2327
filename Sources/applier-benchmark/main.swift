import ChangeEvents
import ChangeLog
import SQLiteKit

#if canImport(Glibc)
import Glibc
#endif

// What applying one row costs the applier, without NATS or processes: `rows` remote events applied through
// ChangeApplier into a fresh WAL database with the capture triggers installed, in groups of `groupSize`
// (one transaction each, with the cursor, as the applier does). Three passes: new rows, newer versions of
// them, and the same versions again (superseded: the row clock says no). Then the local side of row
// clocks (`PendingStamps`): the node's own events coming back, checked against the clocks while 1,000 local
// writes wait to be stamped; and stamping local writes after their commits (what the capturer's watermark
// or the applier's next batch does).
// The database is opened as the applier opens it (ChangeLogInstaller.open: WAL, synchronous=NORMAL).
// Usage: applier-benchmark [rows, default 100000] [group size, default 500] [directory, default /tmp]

let arguments = Array(CommandLine.arguments.dropFirst())
let rows = arguments.first.flatMap { Int($0) } ?? 100_000
let groupSize = arguments.dropFirst().first.flatMap { Int($0) } ?? 500
let parent = arguments.dropFirst(2).first ?? "/tmp"
let remoteNode: UInt64 = 2

/// CPU seconds of this process: on a busy machine, wall time says more about the neighbours.
func seconds() -> Double {
    var now = timespec()
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &now)
    return Double(now.tv_sec) + Double(now.tv_nsec) / 1e9
}

let directory = String(cString: mkdtemp(strdup(parent + "/applier-benchmark.XXXXXX")))
let path = directory + "/bench.db"
// SQLite reads an empty file as an empty database.
close(open(path, O_WRONLY | O_CREAT, 0o644))
try SQLiteDatabase(existingPath: path).execute(
    "CREATE TABLE kv (k INTEGER PRIMARY KEY, v TEXT NOT NULL, n INTEGER, r REAL); "
        + "CREATE TABLE seats (id INTEGER PRIMARY KEY, holder TEXT UNIQUE, n INTEGER)")
let (database, installation) = try ChangeLogInstaller.open(path, node: 1)
let applier = try ChangeApplier(database: database, catalog: installation.catalog)

func events(version: Int) -> [ChangeEvent] {
    let stamp = UInt64(1_800_000_000_000 + version) << 16
    return (0..<rows).map { k in
        let values: [SQLiteValue] = [.integer(Int64(k)), .text("value \(k) version \(version)"), .integer(Int64(k * 7)), .real(Double(k) / 3)]
        return ChangeEvent(
            changeID: Int64(version * rows + k), table: "kv", operation: .upsert, stamp: stamp, writer: remoteNode,
            columns: ["k", "v", "n", "r"], values: values, keyCount: 1)
    }
}

func pass(_ label: String, _ events: [ChangeEvent], applies: Bool, through applier: ChangeApplier) throws {
    var applied = 0
    let start = seconds()
    var sequence: UInt64 = 0
    for group in stride(from: 0, to: events.count, by: groupSize) {
        sequence += 1
        let outcome = try applier.apply(Array(events[group..<min(group + groupSize, events.count)]), cursor: ["harmonylite-changes-1": sequence])
        applied += outcome.applied
    }
    let elapsed = seconds() - start
    guard applied == (applies ? events.count : 0) else { fatalError("\(label): applied \(applied) of \(events.count)") }
    let nanosPerRow = Int((elapsed * 1e9 / Double(events.count)).rounded())
    print("\(label) \(events.count) rows in groups of \(groupSize): \(nanosPerRow / 1000).\(String(nanosPerRow % 1000 / 10).leftPadded(2)) µs/row (CPU)")
}

extension String {
    func leftPadded(_ width: Int) -> String { String(repeating: "0", count: max(0, width - count)) + self }
}

let first = events(version: 1)
let second = events(version: 2)
try pass("insert:   ", first, applies: true, through: applier)
try pass("update:   ", second, applies: true, through: applier)
try pass("supersede:", second, applies: false, through: applier)
// The application: its connection fires the capture triggers (the applier's is in the replica role).
let application = try SQLiteDatabase(existingPath: path)
func localUpdates(_ count: Int, on application: SQLiteDatabase) throws {
    let update = try application.prepare("UPDATE kv SET n = n + 1 WHERE k = ?")
    try application.execute("BEGIN")
    for k in 0..<count { try update.run([.integer(Int64(k % rows))]) }
    try application.execute("COMMIT")
}
let stamper = StampMaterializer(database: application)
_ = try application.transaction { () throws(SQLiteError) -> Int in try stamper.materialize() }

// The node's own events back from the stream (older than the rows' clocks: none is applied), with 1,000
// local writes not stamped yet, checked in groups of `groupSize` as the applier checks each delivery group.
try localUpdates(1000, on: application)
let own = (0..<rows).map { k in
    ChangeEvent(
        changeID: Int64(k), table: "kv", operation: .upsert, stamp: 1 << 16, writer: 1,
        columns: ["k", "v", "n", "r"], values: [.integer(Int64(k)), .text("own"), .integer(0), .real(0)], keyCount: 1)
}
var checkStart = seconds()
var newer = 0
for group in stride(from: 0, to: own.count, by: groupSize) { newer += try applier.notYetHeld(Array(own[group..<min(group + groupSize, own.count)])).count }
guard newer == 0 else { fatalError("own events: \(newer) taken for newer than the rows' clocks") }
var nanos = Int(((seconds() - checkStart) * 1e9 / Double(own.count)).rounded())
print(
    "own:       \(own.count) rows in groups of \(groupSize), 1,000 local writes pending: \(nanos / 1000).\(String(nanos % 1000 / 10).leftPadded(2)) µs/row (CPU)"
)

// Local writes stamped after their commits: one transaction for all that is pending.
try localUpdates(rows, on: application)
checkStart = seconds()
let stamped = try application.transaction { () throws(SQLiteError) -> Int in try stamper.materialize() }
guard stamped == rows + 1000 else { fatalError("stamped \(stamped) of \(rows + 1000)") }
nanos = Int(((seconds() - checkStart) * 1e9 / Double(stamped)).rounded())
print("stamp:     \(stamped) local writes after their commits: \(nanos / 1000).\(String(nanos % 1000 / 10).leftPadded(2)) µs/row (CPU)")

// UNIQUE settlement: `aside` rows held aside in one table (each wants a value a later row holds), then
// updates of the rows that hold those values, in groups: every group that touches the table checks its
// held-aside rows again (`ChangeApplier.settle`). Compared with the same updates while nothing is aside.
let aside = min(rows, 1000)
func seat(_ id: Int, holder: Int, n: Int, stamp: UInt64, writer: UInt64) -> ChangeEvent {
    ChangeEvent(
        changeID: Int64(id), table: "seats", operation: .upsert, stamp: stamp << 16, writer: writer,
        columns: ["id", "holder", "n"], values: [.integer(Int64(id)), .text("h\(holder)"), .integer(Int64(n))], keyCount: 1)
}
let holders = (0..<aside).map { seat($0 + aside, holder: $0, n: 0, stamp: 1_900_000_000_000, writer: 3) }
try pass("seats:    ", holders, applies: true, through: applier)
let updates = { (round: UInt64) in (0..<aside).map { seat($0 + aside, holder: $0, n: Int(round), stamp: 1_900_000_000_000 + round, writer: 3) } }
try pass("no aside: ", updates(1), applies: true, through: applier)
_ = try applier.apply((0..<aside).map { seat($0, holder: $0, n: 0, stamp: 1_800_000_000_000, writer: 2) })
guard try database.scalarInteger("SELECT count(*) FROM \"\(ChangeLogSchema.conflicts)\"") == Int64(aside) else { fatalError("rows held aside") }
try pass("\(aside) aside:", updates(2), applies: true, through: applier)
// Rows of the same table that concern none of the held-aside ones (other ids, other values): the held-aside
// rows are found by lookup (`HeldAsideRows.concerned`), so these cost what they cost with nothing aside.
let unrelated = (0..<aside).map { seat(3 * aside + $0, holder: 3 * aside + $0, n: 0, stamp: 1_900_000_000_100, writer: 3) }
try pass("unrelated: ", unrelated, applies: true, through: applier)

for file in ["bench.db", "bench.db-wal", "bench.db-shm"] { unlink(directory + "/" + file) }
rmdir(directory)
