#define _GNU_SOURCE
#include "hl_posix.h"

#include <stddef.h>
#include <sys/prctl.h>
#include <time.h>

int hl_set_parent_death_signal(int signal) { return prctl(PR_SET_PDEATHSIG, signal); }

#ifndef HL_GIT_COMMIT
#define HL_GIT_COMMIT "unknown"
#endif
#ifndef HL_BUILD_DATE
#define HL_BUILD_DATE __DATE__ " " __TIME__
#endif

const char *hl_build_git_commit(void) { return HL_GIT_COMMIT; }
const char *hl_build_date(void) { return HL_BUILD_DATE; }

int hl_poll_microseconds(struct pollfd *descriptors, unsigned long count, long long timeout_microseconds) {
    if (timeout_microseconds < 0) return ppoll(descriptors, (nfds_t)count, NULL, NULL);
    struct timespec timeout = {.tv_sec = timeout_microseconds / 1000000, .tv_nsec = (timeout_microseconds % 1000000) * 1000};
    return ppoll(descriptors, (nfds_t)count, &timeout, NULL);
}
