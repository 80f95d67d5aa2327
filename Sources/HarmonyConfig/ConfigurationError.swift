/// A configuration problem, reported before anything starts. Names the file, the line when known, and
/// the key.
public struct ConfigurationError: Error, Equatable, CustomStringConvertible, Sendable {
    public var file: String?
    public var line: Int?
    public var key: String?
    public var message: String

    public init(file: String? = nil, line: Int? = nil, key: String? = nil, message: String) {
        self.file = file
        self.line = line
        self.key = key
        self.message = message
    }

    public var description: String {
        var location = ""
        if let file {
            location = file
            if let line { location += ":\(line)" }
            location += ": "
        }
        return location + message
    }
}
