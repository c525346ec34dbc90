/* The glibc and Linux calls that confine a fog node's attempts, which Swift's Glibc module
 * leaves out: variadic (prctl, syscall) or declared only under _GNU_SOURCE. Header-only: glibc
 * itself is the library. */
#include <fcntl.h>
#include <spawn.h>
#include <sys/syscall.h>
#include <unistd.h>

/* glibc 2.29 and 2.34; Debian bookworm has 2.36. */
extern int posix_spawn_file_actions_addchdir_np(posix_spawn_file_actions_t *actions, const char *path);
extern int posix_spawn_file_actions_addclosefrom_np(posix_spawn_file_actions_t *actions, int from);
extern int pipe2(int fds[2], int flags);

/* prctl(PR_SET_NO_NEW_PRIVS, 1): execve never grants privileges again (set-user-ID bits and
 * file capabilities are ignored) in this process and all it starts. */
static inline int fog_set_no_new_privs(void) {
    return (int)syscall(SYS_prctl, 38 /* PR_SET_NO_NEW_PRIVS */, 1UL, 0UL, 0UL, 0UL);
}

/* An anonymous file in memory, closed on exec (MFD_CLOEXEC). */
static inline int fog_memfd_create(const char *name) {
    return (int)syscall(SYS_memfd_create, name, 1U /* MFD_CLOEXEC */);
}

/* Marks every descriptor from `first` up close-on-exec (Linux 5.11, CLOSE_RANGE_CLOEXEC). */
static inline int fog_cloexec_from(unsigned int first) {
    return (int)syscall(SYS_close_range, first, ~0U, 4U /* CLOSE_RANGE_CLOEXEC */);
}

/* Closes every descriptor from `first` up (Linux 5.9). */
static inline int fog_close_from(unsigned int first) {
    return (int)syscall(SYS_close_range, first, ~0U, 0U);
}

static inline int fog_set_cloexec(int fd) {
    int flags = fcntl(fd, F_GETFD);
    return flags < 0 ? -1 : fcntl(fd, F_SETFD, flags | FD_CLOEXEC);
}

static inline int fog_set_nonblocking(int fd) {
    int flags = fcntl(fd, F_GETFL);
    return flags < 0 ? -1 : fcntl(fd, F_SETFL, flags | O_NONBLOCK);
}
