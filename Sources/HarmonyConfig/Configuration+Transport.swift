import Foundation
import Logs

extension Configuration {
    /// The bytes the supervisor puts in the handshake's `welcome`. JSON, because it travels once per worker
    /// start and Codable keeps a single definition of every field; hot paths use the binary encodings.
    public func encodedForWorkers() -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        return Array((try? encoder.encode(self)) ?? Data())
    }

    public init(fromWorkerHandshake bytes: [UInt8]) throws {
        self = try JSONDecoder().decode(Configuration.self, from: Data(bytes))
    }

    /// A copy safe to log: passwords, secrets and tokens replaced.
    public var redacted: Configuration {
        var copy = self
        let mask = { (value: inout String) in if !value.isEmpty { value = "<redacted>" } }
        mask(&copy.nats.userPassword)
        copy.embeddedCredentials = copy.embeddedCredentials.map {
            EmbeddedCredentials(
                clientUser: $0.clientUser, clientPassword: "<redacted>", routeUser: $0.routeUser, routePassword: "<redacted>",
                adminUser: $0.adminUser, adminPassword: $0.adminPassword.isEmpty ? "" : "<redacted>",
                leafUser: $0.leafUser, leafPassword: $0.leafPassword.isEmpty ? "" : "<redacted>")
        }
        mask(&copy.snapshot.s3.secret)
        mask(&copy.snapshot.s3.sessionToken)
        copy.snapshotSigningKey = copy.snapshotSigningKey.map { _ in "<redacted>" }
        copy.snapshot.webdav.url = URLRedaction.redact(copy.snapshot.webdav.url)
        copy.snapshot.sftp.url = URLRedaction.redact(copy.snapshot.sftp.url)
        copy.nats.urls = copy.nats.urls.map(URLRedaction.redact)
        return copy
    }
}
