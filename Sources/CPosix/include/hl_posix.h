#ifndef HL_POSIX_H
#define HL_POSIX_H

// Linux calls Swift's Glibc module does not expose (they need _GNU_SOURCE or are variadic).
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/signalfd.h>
#include <sys/types.h>

/// prctl(PR_SET_PDEATHSIG, signal): prctl is variadic, so Swift cannot call it directly.
int hl_set_parent_death_signal(int signal);

/// Build facts passed by scripts/build.sh as -Xcc -DHL_GIT_COMMIT=... (plain `swift build` leaves them unknown).
const char *hl_build_git_commit(void);
const char *hl_build_date(void);

#endif
