import CSystemd
import Supervision

/// The supervisor's voice to systemd (`NotifyAccess=main`: workers never talk to systemd). Without
/// `NOTIFY_SOCKET` every call is a no-op, as under a plain shell.
struct SystemdNotifier {
    func notify(_ state: SystemdState) {
        _ = sd_notify(0, state.notification)
    }

    /// Half of `WATCHDOG_USEC` in seconds, systemd's recommended ping interval; nil when the watchdog is off
    /// (or meant for another pid).
    var watchdogInterval: Double? {
        var microseconds: UInt64 = 0
        guard sd_watchdog_enabled(0, &microseconds) > 0, microseconds > 0 else { return nil }
        return Double(microseconds) / 2_000_000
    }
}
