import CNats
import Logs

#if canImport(Glibc)
import Glibc
#endif

/// How to reach NATS: the `[nats]` keys that concern a client.
public struct ConnectionSettings: Sendable {
    public var urls: [String]
    public var name: String
    public var userName = ""
    public var userPassword = ""
    public var nkeyPublicKey = ""
    public var seedFile = ""
    public var caFile = ""
    public var certFile = ""
    public var keyFile = ""
    public var reconnectWaitSeconds = 2
    /// Connect only to `urls`, never to servers the cluster advertises (the embedded server's user is
    /// known to that server alone).
    public var ignoreDiscoveredServers = false
    /// How long one connection attempt may take.
    public var connectTimeoutMilliseconds: Int64 = 2000
    /// How long one JetStream API request may take.
    public var jetStreamWaitMilliseconds: Int64 = 2000
    /// Receives the acknowledgements of asynchronous publishes (publishing needs it).
    public var publishAcks: PublishAcks?
    /// At most this many asynchronous publishes unacknowledged at once.
    public var maxPendingPublishes: Int64 = 4096

    public init(urls: [String], name: String) {
        self.urls = urls
        self.name = name
    }
}

/// A libnats connection with its JetStream context. Once connected, libnats reconnects in the background
/// forever: unlike HarmonyLite (which gave up for good after `connect_retries` reconnects, about ten seconds
/// of network trouble) a connection never dies of an outage. The first connection is one bounded attempt per
/// call, so the caller can count attempts, keep heartbeating, and report the server's reason (libnats'
/// retry-on-failed-connect blocks forever on an authorization error).
public final class NATSConnection: @unchecked Sendable {
    let connection: OpaquePointer
    let jetStream: OpaquePointer
    /// Kept alive as long as libnats may call back into it.
    private let publishAcks: PublishAcks?

    private init(connection: OpaquePointer, jetStream: OpaquePointer, publishAcks: PublishAcks?) {
        self.connection = connection
        self.jetStream = jetStream
        self.publishAcks = publishAcks
    }

    deinit {
        jsCtx_Destroy(jetStream)
        natsConnection_Destroy(connection)
    }

    /// One connection attempt, bounded by `connectTimeoutMilliseconds`.
    public static func connect(_ settings: ConnectionSettings) throws(NATSError) -> NATSConnection {
        var options: OpaquePointer?
        try check(natsOptions_Create(&options), "natsOptions_Create")
        defer { natsOptions_Destroy(options) }
        let cURLs = settings.urls.map { strdup($0) }
        defer { cURLs.forEach { free($0) } }
        var servers = cURLs.map { UnsafePointer<CChar>($0) }
        try check(natsOptions_SetServers(options, &servers, Int32(servers.count)), "nats.urls")
        try check(natsOptions_SetName(options, settings.name), "client name")
        try check(natsOptions_SetMaxReconnect(options, -1), "max reconnect")
        try check(natsOptions_SetReconnectWait(options, Int64(settings.reconnectWaitSeconds) * 1000), "reconnect_wait_seconds")
        try check(natsOptions_SetTimeout(options, settings.connectTimeoutMilliseconds), "connect timeout")
        try check(natsOptions_SetIgnoreDiscoveredServers(options, settings.ignoreDiscoveredServers), "ignore discovered servers")
        // Every publish (a change batch, a pull request, an acknowledgement) goes to the socket at once. By
        // default libnats buffers it for its flusher thread, which sent it up to ~1 ms later (seen under strace
        // at 10 rows/s: the broker's HPUB 0.9 ms after the capturer's frame): a fixed delay on every row's way.
        try check(natsOptions_SetSendAsap(options, true), "send as soon as possible")
        if !settings.userName.isEmpty {
            try check(natsOptions_SetUserInfo(options, settings.userName, settings.userPassword), "nats.user_name")
        }
        if !settings.seedFile.isEmpty {
            try check(natsOptions_SetNKeyFromSeed(options, settings.nkeyPublicKey, settings.seedFile), "nats.seed_file \(settings.seedFile)")
        }
        if !settings.caFile.isEmpty || !settings.certFile.isEmpty {
            try check(natsOptions_SetSecure(options, true), "TLS")
        }
        if !settings.caFile.isEmpty {
            try check(natsOptions_LoadCATrustedCertificates(options, settings.caFile), "nats.ca_file \(settings.caFile)")
        }
        if !settings.certFile.isEmpty {
            try check(natsOptions_LoadCertificatesChain(options, settings.certFile, settings.keyFile), "nats.cert_file/key_file")
        }

        var connection: OpaquePointer?
        let status = natsConnection_Connect(&connection, options)
        guard status == NATS_OK, let connection else {
            throw NATSError(operation: "connect to \(settings.urls.map(URLRedaction.redact).joined(separator: ","))", status: status)
        }
        var jsOptions = jsOptions()
        jsOptions_Init(&jsOptions)
        jsOptions.Wait = settings.jetStreamWaitMilliseconds
        if let acks = settings.publishAcks {
            jsOptions.PublishAsync.AckHandler = publishAckHandler
            jsOptions.PublishAsync.AckHandlerClosure = Unmanaged.passUnretained(acks).toOpaque()
            jsOptions.PublishAsync.MaxPending = settings.maxPendingPublishes
        }
        var jetStream: OpaquePointer?
        let jsStatus = natsConnection_JetStream(&jetStream, connection, &jsOptions)
        guard jsStatus == NATS_OK, let jetStream else {
            natsConnection_Destroy(connection)
            throw NATSError(operation: "JetStream context", status: jsStatus)
        }
        return NATSConnection(connection: connection, jetStream: jetStream, publishAcks: settings.publishAcks)
    }

    public var isConnected: Bool { natsConnection_Status(connection) == NATS_CONN_STATUS_CONNECTED }

    /// The last error the server reported on this connection (a permissions violation, say), if any.
    public var lastError: String? {
        var text: UnsafePointer<CChar>?
        guard natsConnection_GetLastError(connection, &text) != NATS_OK, let text else { return nil }
        return String(cString: text)
    }

    /// The largest message the server accepts (its `max_payload`, as it announced it on connecting).
    public var maxPayload: Int { Int(natsConnection_GetMaxPayload(connection)) }

    /// Asks JetStream for the account information: succeeds only when JetStream is enabled and answering
    /// (in a cluster: when it has a meta leader).
    public func checkJetStream() throws(NATSError) -> JetStreamAccount {
        var info: UnsafeMutablePointer<jsAccountInfo>?
        var code = jsErrCode(rawValue: 0)
        let status = js_GetAccountInfo(&info, jetStream, nil, &code)
        guard status == NATS_OK, let info else {
            throw NATSError(operation: "JetStream account info", status: status, jetStreamCode: Int(code.rawValue))
        }
        defer { jsAccountInfo_Destroy(info) }
        return JetStreamAccount(streams: Int(info.pointee.Streams), consumers: Int(info.pointee.Consumers))
    }

    /// Creates a file-backed stream (or accepts an identical existing one).
    public func addStream(name: String, subjects: [String], replicas: Int, maxMessages: Int64 = -1) throws(NATSError) -> StreamSummary {
        var config = jsStreamConfig()
        jsStreamConfig_Init(&config)
        let cName = strdup(name)
        let cSubjects = subjects.map { strdup($0) }
        defer {
            free(cName)
            cSubjects.forEach { free($0) }
        }
        var subjectPointers = cSubjects.map { UnsafePointer<CChar>($0) }
        var info: UnsafeMutablePointer<jsStreamInfo>?
        var code = jsErrCode(rawValue: 0)
        let status = subjectPointers.withUnsafeMutableBufferPointer { buffer in
            config.Name = UnsafePointer(cName)
            config.Subjects = buffer.baseAddress
            config.SubjectsLen = Int32(buffer.count)
            config.Storage = js_FileStorage
            config.Replicas = Int64(replicas)
            config.MaxMsgs = maxMessages
            return js_AddStream(&info, jetStream, &config, nil, &code)
        }
        guard status == NATS_OK, let info else {
            throw NATSError(operation: "create stream \(name)", status: status, jetStreamCode: Int(code.rawValue))
        }
        defer { jsStreamInfo_Destroy(info) }
        var replicaCount = 1
        var leader = ""
        if let cluster = info.pointee.Cluster {
            replicaCount = 1 + Int(cluster.pointee.ReplicasLen)
            leader = cluster.pointee.Leader.map { String(cString: $0) } ?? ""
        }
        return StreamSummary(name: name, replicas: replicaCount, leader: leader)
    }

    private static func check(_ status: natsStatus, _ what: String) throws(NATSError) {
        guard status == NATS_OK else { throw NATSError(operation: what, status: status) }
    }
}

public struct JetStreamAccount: Sendable, Equatable {
    public var streams: Int
    public var consumers: Int
}

public struct StreamSummary: Sendable, Equatable {
    public var name: String
    /// The leader plus its current replicas.
    public var replicas: Int
    public var leader: String
}

/// A libnats failure: the operation, libnats' status text and, for JetStream, the API error code.
public struct NATSError: Error, CustomStringConvertible, Sendable {
    public var operation: String
    public var statusText: String
    public var detail: String
    public var jetStreamCode: Int

    init(operation: String, status: natsStatus, jetStreamCode: Int = 0, detail: String? = nil) {
        self.operation = operation
        statusText = String(cString: natsStatus_GetText(status))
        var lastStatus = NATS_OK
        self.detail = detail ?? nats_GetLastError(&lastStatus).map { String(cString: $0) } ?? ""
        self.jetStreamCode = jetStreamCode
    }

    public var description: String {
        var text = "\(operation): \(statusText)"
        if !detail.isEmpty && detail != statusText { text += " (\(detail))" }
        if jetStreamCode != 0 { text += " [JetStream error \(jetStreamCode)]" }
        return text
    }
}
