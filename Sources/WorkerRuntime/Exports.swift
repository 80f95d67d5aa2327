// Every worker reads the clocks and reports failed calls through the system-call layer.
@_exported import SystemCalls
