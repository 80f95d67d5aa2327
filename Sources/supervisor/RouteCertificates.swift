import Foundation
import HarmonyConfig
import NATSClient
import NodeNATS
import SystemCalls

#if canImport(Glibc)
import Glibc
#endif

/// TLS for the embedded servers' routes without files to distribute: at every start the supervisor derives
/// the routes' CA key from the cluster secret (`ClusterSecret.routeCAPrivateKeyDER`, the same on every
/// node), makes the CA certificate from it, a fresh key for this node and a certificate for it signed by
/// that CA (valid from a day ago, for clock skew, for ten years), naming every address peers may dial:
/// loopback, `-cluster-addr`'s host, the host name and every address of the machine's interfaces. Every
/// server then verifies both ways that a route presents a certificate of the cluster's CA, so the route
/// password never crosses the network in clear and a server without the cluster secret cannot join even
/// with it. The CA key is deleted once the certificate is signed; the files live in the run directory,
/// readable by the node's user only. Done with Debian's `openssl` command.
enum RouteCertificates {
    struct Files: Equatable {
        var certFile: String
        var keyFile: String
        var caFile: String
    }

    static func make(secret: [UInt8], config: Configuration, runDirectory: String) throws(SupervisorError) -> Files {
        let candidates: [String] = ["/usr/bin/openssl", "/bin/openssl", "/usr/local/bin/openssl"]
        guard let openssl = candidates.first(where: { path in access(path, X_OK) == 0 }) else {
            throw SupervisorError(
                .missingProgram,
                "the routes' TLS certificates are made with the openssl command, which is missing (apt install openssl), "
                    + "or name your own with nats.route_tls_cert_file, route_tls_key_file and route_tls_ca_file")
        }
        let directory = runDirectory + "/route-tls"
        if mkdir(directory, 0o700) != 0 && errno != EEXIST {
            throw SupervisorError(.filesystem, "cannot create \(directory): \(SystemError.reason(errno))")
        }
        let oldMask = umask(0o077)
        defer { umask(oldMask) }
        let files = Files(certFile: directory + "/node.pem", keyFile: directory + "/node.key", caFile: directory + "/ca.pem")
        let caDER = directory + "/ca.der", caKey = directory + "/ca.key", request = directory + "/node.csr", settings = directory + "/ca.cnf"
        let index = directory + "/index.txt", serial = directory + "/serial"
        let temporary = [caDER, caKey, request, settings, index, index + ".attr", index + ".old", index + ".attr.old", serial, serial + ".old"]
        defer { temporary.forEach { unlink($0) } }
        try write(ClusterSecret.routeCAPrivateKeyDER(secret: secret), to: caDER)
        try write(Array("".utf8), to: index)
        var generator = SystemRandomNumberGenerator()
        // An even number of hex digits (openssl refuses an odd one): 16, the first one not 0.
        let digits = String(UInt64.random(in: 1 << 60 ... .max, using: &generator), radix: 16)
        try write(Array(digits.utf8) + [0x0A], to: serial)
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "yyyyMMddHHmmss'Z'"
        let now = Date()
        try write(
            Array(
                ("""
                [ ca ]
                default_ca = routes
                [ routes ]
                database = \(index)
                new_certs_dir = \(directory)
                serial = \(serial)
                default_md = sha256
                policy = any
                unique_subject = no
                [ any ]
                commonName = supplied
                [ node ]
                basicConstraints = critical, CA:FALSE
                keyUsage = critical, digitalSignature, keyEncipherment
                extendedKeyUsage = serverAuth, clientAuth
                subjectAltName = \(subjectAltNames(config).joined(separator: ", "))

                """).utf8), to: settings)
        try run(openssl, ["ec", "-inform", "DER", "-in", caDER, "-out", caKey])
        try run(openssl, ["req", "-x509", "-new", "-key", caKey, "-subj", "/CN=HarmonyLite routes CA", "-days", "36500", "-out", files.caFile])
        try run(
            openssl,
            [
                "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", files.keyFile,
                "-subj", "/CN=\(config.nodeName)", "-out", request,
            ])
        try run(
            openssl,
            [
                "ca", "-batch", "-notext", "-config", settings, "-cert", files.caFile, "-keyfile", caKey, "-in", request, "-out", files.certFile,
                "-extensions", "node", "-startdate", formatter.string(from: now.addingTimeInterval(-86400)),
                "-enddate", formatter.string(from: now.addingTimeInterval(3650 * 86400)),
            ])
        // `openssl ca` keeps a copy named after the serial: not needed.
        if let names = try? FileManager.default.contentsOfDirectory(atPath: directory) {
            for name in names where name.hasSuffix(".pem") && ![files.certFile, files.caFile].contains(directory + "/" + name) {
                unlink(directory + "/" + name)
            }
        }
        return files
    }

    /// Every name peers may dial this node's routes by: loopback, `-cluster-addr`'s host, the host name
    /// and each interface address (a route gossiped by another server names one of them).
    static func subjectAltNames(_ config: Configuration) -> [String] {
        var names = ["IP:127.0.0.1", "IP:::1", "DNS:localhost"]
        func add(_ host: String) {
            let bare = String(host.split(separator: "%").first ?? "")
            guard !bare.isEmpty, bare != "0.0.0.0", bare != "::", bare.allSatisfy({ $0.isLetter || $0.isNumber || ".-:_".contains($0) }) else { return }
            let entry = (bare.contains(":") || bare.allSatisfy({ $0.isNumber || $0 == "." })) ? "IP:" + bare : "DNS:" + bare
            if !names.contains(entry) { names.append(entry) }
        }
        if let host = HostPort(parsing: config.clusterAddress)?.host { add(host) }
        var hostname = [CChar](repeating: 0, count: 256)
        if gethostname(&hostname, hostname.count - 1) == 0 { add(String(cString: hostname)) }
        var list: UnsafeMutablePointer<ifaddrs>?
        if getifaddrs(&list) == 0, let first = list {
            defer { freeifaddrs(list) }
            var current: UnsafeMutablePointer<ifaddrs>? = first
            while let entry = current {
                if let address = entry.pointee.ifa_addr, [AF_INET, AF_INET6].contains(Int32(address.pointee.sa_family)) {
                    var text = [CChar](repeating: 0, count: Int(NI_MAXHOST))
                    let length = socklen_t(address.pointee.sa_family == sa_family_t(AF_INET) ? MemoryLayout<sockaddr_in>.size : MemoryLayout<sockaddr_in6>.size)
                    if getnameinfo(address, length, &text, socklen_t(text.count), nil, 0, NI_NUMERICHOST) == 0 { add(String(cString: text)) }
                }
                current = entry.pointee.ifa_next
            }
        }
        return names
    }

    private static func write(_ bytes: [UInt8], to path: String) throws(SupervisorError) {
        unlink(path)
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0o600)
        guard fd >= 0 else { throw SupervisorError(.filesystem, "cannot write \(path): \(SystemError.reason(errno))") }
        defer { close(fd) }
        guard Glibc.write(fd, bytes, bytes.count) == bytes.count else {
            throw SupervisorError(.filesystem, "cannot write \(path): \(SystemError.reason(errno))")
        }
    }

    private static func run(_ openssl: String, _ arguments: [String]) throws(SupervisorError) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: openssl)
        process.arguments = arguments
        let output = Pipe()
        process.standardOutput = output
        process.standardError = output
        process.standardInput = FileHandle.nullDevice
        do {
            try process.run()
        } catch {
            throw SupervisorError(.missingProgram, "cannot run \(openssl): \(error)")
        }
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile().prefix(4096), as: UTF8.self)
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw SupervisorError(.filesystem, "making the routes' TLS certificates: openssl \(arguments.first ?? "") failed: \(text)")
        }
    }
}
