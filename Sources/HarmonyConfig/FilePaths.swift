/// Path arithmetic without Foundation.
public enum FilePaths {
    /// The directory part of `path` ("." for a bare file name), made absolute against `cwd`.
    public static func directory(of path: String, cwd: String? = nil) -> String {
        let absolute = absolute(path, cwd: cwd)
        guard let slash = absolute.lastIndex(of: "/") else { return "." }
        return slash == absolute.startIndex ? "/" : String(absolute[..<slash])
    }

    public static func absolute(_ path: String, cwd: String? = nil) -> String {
        if path.hasPrefix("/") { return path }
        let base = cwd ?? currentDirectory()
        return base == "/" ? "/" + path : base + "/" + path
    }

    public static func currentDirectory() -> String {
        guard let pointer = getcwd(nil, 0) else { return "." }
        defer { free(pointer) }
        return String(cString: pointer)
    }
}

#if canImport(Glibc)
import Glibc
#endif
