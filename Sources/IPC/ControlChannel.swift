/// How a worker finds its supervisor: the control socket's path arrives in an environment variable.
public enum ControlChannel {
    public static let environmentVariable = "HARMONYLITE_CONTROL_SOCKET"
    /// The control socket's file name inside the node's run directory.
    public static let socketName = "control.sock"
}
