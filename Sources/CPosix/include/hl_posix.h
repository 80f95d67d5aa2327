#ifndef HL_POSIX_H
#define HL_POSIX_H

// Linux calls Swift's Glibc module does not expose (they need _GNU_SOURCE or are variadic).
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/signalfd.h>
#include <poll.h>
#include <sys/types.h>

/// prctl(PR_SET_PDEATHSIG, signal): prctl is variadic, so Swift cannot call it directly.
int hl_set_parent_death_signal(int signal);

/// ppoll(2) with a timeout in microseconds (negative: none), without a signal mask: a wait for deadlines a
/// fraction of a millisecond away. ppoll needs _GNU_SOURCE, which Swift's Glibc module is not built with.
int hl_poll_microseconds(struct pollfd *descriptors, unsigned long count, long long timeout_microseconds);

/// Build facts passed by scripts/build.sh as -Xcc -DHL_GIT_COMMIT=... (plain `swift build` leaves them unknown).
const char *hl_build_git_commit(void);
const char *hl_build_date(void);

#endif
