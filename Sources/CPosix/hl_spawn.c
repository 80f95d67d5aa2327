#define _GNU_SOURCE
#include "hl_spawn.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif

// Only async-signal-safe calls between fork and execve.
static void child(const char *path, char *const argv[], char *const envp[], const hl_spawn_attributes *a,
                  pid_t parent, int report_fd) {
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    for (int sig = 1; sig < NSIG; sig++) {
        if (sig != SIGKILL && sig != SIGSTOP) signal(sig, SIG_DFL);
    }
    if (a->new_process_group) setpgid(0, 0);
    if (a->parent_death_signal) {
        prctl(PR_SET_PDEATHSIG, a->parent_death_signal);
        // The parent may have died between fork and prctl: then nobody would ever signal us.
        if (getppid() != parent) _exit(127);
    }
    int err = 0;
    if (a->redirect_output) {
        if (dup2(a->output_fd, 1) < 0 || dup2(a->output_fd, 2) < 0) err = errno;
    }
    if (!err && a->address_space_bytes > 0) {
        struct rlimit l = {(rlim_t)a->address_space_bytes, (rlim_t)a->address_space_bytes};
        if (setrlimit(RLIMIT_AS, &l) != 0) err = errno;
    }
    if (!err && a->open_files > 0) {
        struct rlimit l = {(rlim_t)a->open_files, (rlim_t)a->open_files};
        if (setrlimit(RLIMIT_NOFILE, &l) != 0) err = errno;
    }
    if (!err && a->set_nice) {
        if (setpriority(PRIO_PROCESS, 0, a->nice) != 0) err = errno;
    }
    if (!err) {
        // Everything the supervisor holds (sockets, the signalfd, the database) stays out of the child.
        close_range(3U, ~0U, CLOSE_RANGE_CLOEXEC);
        execve(path, argv, envp);
        err = errno;
    }
    ssize_t ignored = write(report_fd, &err, sizeof err);
    (void)ignored;
    _exit(127);
}

pid_t hl_spawn(const char *path, char *const argv[], char *const envp[], const hl_spawn_attributes *a) {
    int report[2];
    if (pipe2(report, O_CLOEXEC) != 0) return -1;
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) {
        int saved = errno;
        close(report[0]);
        close(report[1]);
        errno = saved;
        return -1;
    }
    if (pid == 0) child(path, argv, envp, a, parent, report[1]);
    close(report[1]);
    int child_errno = 0;
    ssize_t n;
    do {
        n = read(report[0], &child_errno, sizeof child_errno);
    } while (n < 0 && errno == EINTR);
    close(report[0]);
    if (n == (ssize_t)sizeof child_errno) {
        int status;
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {}
        errno = child_errno;
        return -1;
    }
    return pid;
}
