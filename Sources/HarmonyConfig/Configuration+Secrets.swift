import Foundation
import Logs

extension Configuration {
    /// Which credentials a worker may hold. The applier and the capturer never talk to NATS or a snapshot
    /// store (the broker does it for them), and the applier parses other nodes' bytes: a bug there must not
    /// reach a password. The broker talks to NATS only; the snapshotter to NATS and the snapshot store.
    public enum SecretNeed: Sendable {
        case none, nats, natsAndSnapshotStore

        public static func of(worker: WorkerRole) -> SecretNeed {
            switch worker {
            case .broker: .nats
            case .snapshotter: .natsAndSnapshotStore
            case .nats, .applier, .capturer: .none
            }
        }
    }

    /// The configuration a worker receives in its welcome: the secrets it does not need are removed
    /// (passwords, tokens, seed and key files blanked, URLs without their passwords), the rest unchanged.
    public func forWorker(_ worker: WorkerRole) -> Configuration {
        var copy = self
        let need = SecretNeed.of(worker: worker)
        if need != .natsAndSnapshotStore {
            copy.snapshotSigningKey = nil
            copy.snapshot.s3.secret = ""
            copy.snapshot.s3.sessionToken = ""
            copy.snapshot.webdav.url = URLRedaction.redact(copy.snapshot.webdav.url)
            copy.snapshot.sftp.url = URLRedaction.redact(copy.snapshot.sftp.url)
        }
        // No worker holds the routes', the leaves' or the administrator's password: the set-up is the supervisor's.
        copy.embeddedCredentials = copy.embeddedCredentials?.nodeOnly
        if need == .none {
            copy.embeddedCredentials = nil
            copy.nats.userPassword = ""
            copy.nats.seedFile = ""
            copy.nats.keyFile = ""
            copy.nats.urls = copy.nats.urls.map(URLRedaction.redact)
            copy.natsClientURLs = copy.natsClientURLs.map(URLRedaction.redact)
        }
        return copy
    }

    /// Every secret value in this configuration, for `SecretRedaction.register`: masked in any log line
    /// wherever it appears, whatever the text around it.
    public var secretValues: [String] {
        var values = [nats.userPassword, snapshot.s3.secret, snapshot.s3.sessionToken]
        if let embedded = embeddedCredentials { values += [embedded.clientPassword, embedded.routePassword, embedded.adminPassword, embedded.leafPassword] }
        if let snapshotSigningKey { values.append(snapshotSigningKey) }
        for url in nats.urls + natsClientURLs + [snapshot.webdav.url, snapshot.sftp.url] {
            guard let components = URLComponents(string: url) else { continue }
            if let password = components.password { values += [password, password.removingPercentEncoding ?? password] }
            for item in components.queryItems ?? [] where Self.secretParameterNames.contains(item.name.lowercased()) {
                if let value = item.value { values.append(value) }
            }
        }
        return values.filter { !$0.isEmpty }
    }

    private static let secretParameterNames: Set<String> = ["secret", "password", "token"]
}
