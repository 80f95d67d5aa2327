/// `host:port` as the bind keys take it (`:-1`, `0.0.0.0:4222`, `[::1]:4222`, `localhost:4221`).
public struct HostPort: Equatable, Sendable {
    /// Empty when the text had no host.
    public var host: String
    /// -1: any free port.
    public var port: Int

    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    public init?(parsing text: String) {
        guard let colon = text.lastIndex(of: ":") else { return nil }
        var host = String(text[..<colon])
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        guard let port = Int(text[text.index(after: colon)...]), port == -1 || (0...65535).contains(port) else { return nil }
        self.host = host
        self.port = port
    }
}
