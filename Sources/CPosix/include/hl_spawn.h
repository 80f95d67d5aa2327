#ifndef HL_SPAWN_H
#define HL_SPAWN_H

#include <sys/types.h>

/// What the child gets before it executes: limits the kernel enforces from the first instruction on.
typedef struct {
    /// RLIMIT_AS in bytes (soft = hard); 0 keeps the inherited limit.
    long long address_space_bytes;
    /// RLIMIT_NOFILE (soft = hard); 0 keeps the inherited limit.
    long long open_files;
    /// setpriority(PRIO_PROCESS) value, applied when set_nice is non-zero.
    int nice;
    int set_nice;
    /// PR_SET_PDEATHSIG: the signal the child receives when the spawning thread dies; 0 for none.
    int parent_death_signal;
    /// Put the child in a process group of its own, so a terminal's Ctrl-C reaches only the supervisor,
    /// which then drains the children in order.
    int new_process_group;
    /// When non-zero, `output_fd` becomes the child's standard output and error (the write end of a pipe
    /// the supervisor reads, so nats-server's lines are re-emitted in the node's log format).
    int redirect_output;
    int output_fd;
} hl_spawn_attributes;

/// fork + execve with `attributes` applied in the child. Returns the child's pid, or -1 with errno set
/// when fork failed or the child could not execute `path` (the child's errno is reported back through a
/// close-on-exec pipe, so "no such file" surfaces here and not as a mysterious exit status 127).
pid_t hl_spawn(const char *path, char *const argv[], char *const envp[], const hl_spawn_attributes *attributes);

#endif
