// The event sources come with the system-call layer they stand on: clocks, SystemError, descriptors.
@_exported import SystemCalls
