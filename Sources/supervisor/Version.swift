import CPosix
import HarmonyConfig

#if canImport(Glibc)
import Glibc
#endif

/// What `-version` prints: version, git commit, build date, Swift version, platform.
enum Version {
    static let number = HarmonyLiteVersion.number

    static var line: String {
        "HarmonyLite \(number) (git: \(String(cString: hl_build_git_commit())), built: \(String(cString: hl_build_date())), "
            + "\(swiftVersion), \(platform))"
    }

    static var swiftVersion: String {
        #if compiler(>=6.3)
        return "Swift 6.3"
        #elseif compiler(>=6.2)
        return "Swift 6.2"
        #else
        return "Swift 6"
        #endif
    }

    static var platform: String {
        var names = utsname()
        uname(&names)
        func field<T>(_ value: T) -> String {
            withUnsafeBytes(of: value) { raw in String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self) }
        }
        return "\(field(names.sysname).lowercased())/\(field(names.machine))"
    }
}
