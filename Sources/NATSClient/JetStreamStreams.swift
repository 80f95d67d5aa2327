import CNats

#if canImport(Glibc)
import Glibc
#endif

/// A file-backed stream with limits retention: the shard streams as HarmonyLite configures them, and the
/// object store's stream.
public struct StreamSpecification: Equatable, Sendable {
    public var name: String
    public var subjects: [String]
    public var replicas: Int
    /// -1: unlimited.
    public var maxMessages: Int64
    /// JetStream's deduplication window for `Nats-Msg-Id`, in seconds.
    public var duplicateWindowSeconds: Int64 = 120
    /// Whether a `Nats-Rollup` header may replace a subject's earlier messages (the object store's metadata).
    public var allowRollup = false
    /// Whether single messages may not be deleted (HarmonyLite's shard streams; an update cannot undo it).
    public var denyDelete = false
    /// Streams this one takes every message of (JetStream sourcing), keeping their subjects: a region's
    /// shard stream (`nats.region`). With sources, `subjects` is empty.
    public var sources: [Source] = []

    public struct Source: Equatable, Sendable, Hashable {
        public var name: String
        /// Another JetStream domain's API, `$JS.<domain>.API`; nil: this domain.
        public var apiPrefix: String?

        public init(name: String, apiPrefix: String? = nil) {
            self.name = name
            self.apiPrefix = apiPrefix
        }
    }

    public init(name: String, subjects: [String], replicas: Int, maxMessages: Int64) {
        self.name = name
        self.subjects = subjects
        self.replicas = replicas
        self.maxMessages = maxMessages
    }

    /// A stream of one subject (a shard).
    public init(name: String, subject: String, replicas: Int, maxMessages: Int64) {
        self.init(name: name, subjects: [subject], replicas: replicas, maxMessages: maxMessages)
    }

    /// The first subject.
    public var subject: String { subjects[0] }
}

/// What a stream holds now.
public struct StreamState: Equatable, Sendable {
    public var firstSequence: UInt64
    public var lastSequence: UInt64
    public var messages: UInt64
    /// When JetStream created the stream (ns since 1970): its identity. A stream deleted and created again
    /// under the same name has another one, and starts over at sequence 1.
    public var created: UInt64 = 0

    public init(firstSequence: UInt64, lastSequence: UInt64, messages: UInt64, created: UInt64 = 0) {
        self.firstSequence = firstSequence
        self.lastSequence = lastSequence
        self.messages = messages
        self.created = created
    }
}

/// What `ensureStream` found and did.
public struct EnsuredStream: Equatable, Sendable {
    public var state: StreamState
    /// Subjects of the specification the existing stream lacked, now added (empty: none, or created).
    public var addedSubjects: [String] = []
}

extension NATSConnection {
    /// Creates the stream if missing (file storage, limits retention, discard old, the dedup window).
    /// An existing one gets the specification's subjects it lacks, keeping its own (always: a publisher on
    /// a new subject finds no stream otherwise); its limits are changed only when `updateExisting`
    /// (HarmonyLite's `update_existing`).
    @discardableResult
    public func ensureStream(_ spec: StreamSpecification, updateExisting: Bool) throws(NATSError) -> EnsuredStream {
        var info: UnsafeMutablePointer<jsStreamInfo>?
        var code = jsErrCode(rawValue: 0)
        let status = js_GetStreamInfo(&info, jetStream, spec.name, nil, &code)
        if status == NATS_OK, let info {
            defer { jsStreamInfo_Destroy(info) }
            let config = info.pointee.Config.pointee
            let existing = (0..<Int(max(0, config.SubjectsLen))).compactMap { config.Subjects?[$0].map { String(cString: $0) } }
            let missing = spec.subjects.filter { !existing.contains($0) }
            let differs = config.MaxMsgs != spec.maxMessages || Int(config.Replicas) != spec.replicas
            let update = { (config: inout jsStreamConfig) throws(NATSError) -> EnsuredStream in
                var updated: UnsafeMutablePointer<jsStreamInfo>?
                let status = js_UpdateStream(&updated, self.jetStream, &config, nil, &code)
                guard status == NATS_OK, let updated else {
                    throw NATSError(operation: "update stream \(spec.name)", status: status, jetStreamCode: Int(code.rawValue))
                }
                defer { jsStreamInfo_Destroy(updated) }
                return EnsuredStream(state: StreamState(updated.pointee), addedSubjects: missing)
            }
            if !spec.sources.isEmpty {
                // A region's shard stream: exactly its sources and no subject (one that bound the subjects
                // before the node joined a region gives them up to the region's own stream).
                let sources = Set(
                    (0..<Int(max(0, config.SourcesLen))).compactMap { index -> StreamSpecification.Source? in
                        guard let source = config.Sources?[index]?.pointee, let name = source.Name else { return nil }
                        return StreamSpecification.Source(
                            name: String(cString: name), apiPrefix: source.External?.pointee.APIPrefix.map { String(cString: $0) })
                    })
                guard sources != Set(spec.sources) || !existing.isEmpty || (differs && updateExisting) else {
                    return EnsuredStream(state: StreamState(info.pointee))
                }
                var target = spec
                target.denyDelete = config.DenyDelete  // an update may not cancel it
                if !(differs && updateExisting) { (target.maxMessages, target.replicas) = (config.MaxMsgs, Int(config.Replicas)) }
                return try withStreamConfig(target, update)
            }
            guard !missing.isEmpty || (differs && updateExisting) else { return EnsuredStream(state: StreamState(info.pointee)) }
            if differs && updateExisting {
                var target = spec
                target.subjects = existing + missing
                return try withStreamConfig(target, update)
            }
            // Only subjects to add: the stream's own configuration otherwise unchanged (HarmonyLite's
            // streams deny deletes, which an update may not cancel).
            var own = config
            return try withCStrings(existing + missing) { subjects throws(NATSError) in
                own.Subjects = subjects.baseAddress
                own.SubjectsLen = Int32(subjects.count)
                return try update(&own)
            }
        }
        guard status == NATS_NOT_FOUND || code == JSStreamNotFoundErr else {
            throw NATSError(operation: "stream info \(spec.name)", status: status, jetStreamCode: Int(code.rawValue))
        }
        return try withStreamConfig(spec) { config throws(NATSError) in
            var created: UnsafeMutablePointer<jsStreamInfo>?
            let status = js_AddStream(&created, jetStream, &config, nil, &code)
            guard status == NATS_OK, let created else {
                throw NATSError(operation: "create stream \(spec.name)", status: status, jetStreamCode: Int(code.rawValue))
            }
            defer { jsStreamInfo_Destroy(created) }
            return EnsuredStream(state: StreamState(created.pointee))
        }
    }

    public func streamState(_ name: String) throws(NATSError) -> StreamState {
        var info: UnsafeMutablePointer<jsStreamInfo>?
        var code = jsErrCode(rawValue: 0)
        let status = js_GetStreamInfo(&info, jetStream, name, nil, &code)
        guard status == NATS_OK, let info else { throw NATSError(operation: "stream info \(name)", status: status, jetStreamCode: Int(code.rawValue)) }
        defer { jsStreamInfo_Destroy(info) }
        return StreamState(info.pointee)
    }

    /// Deletes the stream and everything in it, its consumers too (operators and tests; the node's own
    /// user is not allowed to).
    public func deleteStream(_ name: String) throws(NATSError) {
        var code = jsErrCode(rawValue: 0)
        let status = js_DeleteStream(jetStream, name, nil, &code)
        guard status == NATS_OK else { throw NATSError(operation: "delete stream \(name)", status: status, jetStreamCode: Int(code.rawValue)) }
    }

    private func withCStrings<T>(_ strings: [String], _ body: (UnsafeMutableBufferPointer<UnsafePointer<CChar>?>) throws(NATSError) -> T) throws(NATSError) -> T
    {
        let copies = strings.map { strdup($0) }
        defer { copies.forEach { free($0) } }
        var pointers: [UnsafePointer<CChar>?] = copies.map { UnsafePointer($0) }
        return try pointers.withUnsafeMutableBufferPointer { buffer throws(NATSError) in try body(buffer) }
    }

    private func withStreamConfig<T>(_ spec: StreamSpecification, _ body: (inout jsStreamConfig) throws(NATSError) -> T) throws(NATSError) -> T {
        var config = jsStreamConfig()
        jsStreamConfig_Init(&config)
        let name = strdup(spec.name)
        defer { free(name) }
        return try withCStrings(spec.subjects) { subjects throws(NATSError) in
            config.Name = UnsafePointer(name)
            config.Subjects = subjects.baseAddress
            config.SubjectsLen = Int32(subjects.count)
            config.Storage = js_FileStorage
            config.Retention = js_LimitsPolicy
            config.Discard = js_DiscardOld
            config.MaxMsgs = spec.maxMessages
            config.Replicas = Int64(spec.replicas)
            config.Duplicates = spec.duplicateWindowSeconds * 1_000_000_000
            config.AllowDirect = true
            config.AllowRollup = spec.allowRollup
            config.DenyDelete = spec.denyDelete
            return try withSources(spec.sources) { sources throws(NATSError) in
                config.Sources = sources.baseAddress
                config.SourcesLen = Int32(sources.count)
                return try body(&config)
            }
        }
    }

    /// C sources for `jsStreamConfig`, alive for the body's duration.
    private func withSources<T>(
        _ sources: [StreamSpecification.Source], _ body: (UnsafeMutableBufferPointer<UnsafeMutablePointer<jsStreamSource>?>) throws(NATSError) -> T
    ) throws(NATSError) -> T {
        var owned: [UnsafeMutableRawPointer] = []
        defer { owned.forEach { free($0) } }
        func copy(_ text: String) -> UnsafePointer<CChar> {
            let pointer = strdup(text)!
            owned.append(UnsafeMutableRawPointer(pointer))
            return UnsafePointer(pointer)
        }
        var pointers: [UnsafeMutablePointer<jsStreamSource>?] = sources.map { spec in
            let source = UnsafeMutablePointer<jsStreamSource>.allocate(capacity: 1)
            owned.append(UnsafeMutableRawPointer(source))
            jsStreamSource_Init(source)
            source.pointee.Name = copy(spec.name)
            if let api = spec.apiPrefix {
                let external = UnsafeMutablePointer<jsExternalStream>.allocate(capacity: 1)
                owned.append(UnsafeMutableRawPointer(external))
                jsExternalStream_Init(external)
                external.pointee.APIPrefix = copy(api)
                external.pointee.DeliverPrefix = copy("")  // libnats reads it unconditionally; empty: the server's default
                source.pointee.External = external
            }
            return source
        }
        return try pointers.withUnsafeMutableBufferPointer { buffer throws(NATSError) in try body(buffer) }
    }
}

extension StreamState {
    init(_ info: jsStreamInfo) {
        self.init(
            firstSequence: info.State.FirstSeq, lastSequence: info.State.LastSeq, messages: info.State.Msgs,
            created: UInt64(clamping: info.Created))
    }
}
