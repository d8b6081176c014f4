/* fz_proc: fork/exec with a time limit, capturing stdout and stderr. */
#include "fuzz/fz_proc.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

typedef struct capture {
    int fd;
    char *buf;
    size_t len;
} capture;

/* Read what is there; false at end of file. Bytes past the capture limit are dropped. */
static bool capture_read(capture *c)
{
    char tmp[65536];
    ssize_t n = read(c->fd, tmp, sizeof tmp);
    if (n < 0 && (errno == EINTR || errno == EAGAIN))
        return true;
    if (n <= 0)
        return false;
    size_t keep = c->len < FZ_PROC_CAPTURE ? FZ_PROC_CAPTURE - c->len : 0;
    if ((size_t)n < keep)
        keep = (size_t)n;
    memcpy(c->buf + c->len, tmp, keep);
    c->len += keep;
    c->buf[c->len] = '\0';
    return true;
}

int fz_proc_run(char *const argv[], const char *cwd, double timeout_seconds, fz_proc_result *r)
{
    memset(r, 0, sizeof *r);
    int out_pipe[2], err_pipe[2];
    if (pipe2(out_pipe, O_CLOEXEC) != 0)
        return -1;
    if (pipe2(err_pipe, O_CLOEXEC) != 0) {
        close(out_pipe[0]);
        close(out_pipe[1]);
        return -1;
    }
    double start = now_seconds();
    /* posix_spawn, not fork: a sanitizer build has a vast address space, and copying its
     * page tables for every program run cost more than the programs. */
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, out_pipe[1], 1);
    posix_spawn_file_actions_adddup2(&fa, err_pipe[1], 2);
    if (cwd)
        posix_spawn_file_actions_addchdir_np(&fa, cwd);
    posix_spawnattr_init(&attr);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP);
    posix_spawnattr_setpgroup(&attr, 0);
    pid_t pid;
    int spawned = posix_spawnp(&pid, argv[0], &fa, &attr, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&attr);
    if (spawned != 0) {
        close(out_pipe[0]);
        close(out_pipe[1]);
        close(err_pipe[0]);
        close(err_pipe[1]);
        return -1;
    }
    setpgid(pid, pid);
    close(out_pipe[1]);
    close(err_pipe[1]);
    capture caps[2] = {{out_pipe[0], malloc(FZ_PROC_CAPTURE + 1), 0}, {err_pipe[0], malloc(FZ_PROC_CAPTURE + 1), 0}};
    caps[0].buf[0] = caps[1].buf[0] = '\0';
    bool open_fds[2] = {true, true};
    bool exited = false;
    double exit_time = 0;
    int status = 0;
    for (;;) {
        double t = now_seconds();
        if (!exited) {
            pid_t w = waitpid(pid, &status, WNOHANG);
            if (w == pid) {
                exited = true;
                exit_time = t;
            }
        }
        /* After the program exits, what it started gets a second to let go of the pipes. */
        if (exited && ((!open_fds[0] && !open_fds[1]) || t - exit_time > 1.0))
            break;
        if (!exited && t - start > timeout_seconds) {
            r->timed_out = true;
            kill(-pid, SIGKILL);
            while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
                ;
            break;
        }
        struct pollfd pf[2];
        int n = 0, map[2];
        for (int i = 0; i < 2; i++)
            if (open_fds[i]) {
                pf[n] = (struct pollfd){.fd = caps[i].fd, .events = POLLIN};
                map[n++] = i;
            }
        int got = poll(pf, (nfds_t)n, n ? 20 : 1);
        for (int k = 0; k < n && got > 0; k++)
            if (pf[k].revents && !capture_read(&caps[map[k]]))
                open_fds[map[k]] = false;
    }
    /* Anything of its process group still running was left behind. */
    r->left_behind = !r->timed_out && kill(-pid, 0) == 0;
    kill(-pid, SIGKILL);
    close(caps[0].fd);
    close(caps[1].fd);
    r->seconds = now_seconds() - start;
    r->out = caps[0].buf;
    r->out_len = caps[0].len;
    r->err = caps[1].buf;
    r->err_len = caps[1].len;
    if (WIFEXITED(status))
        r->exit_code = WEXITSTATUS(status);
    else if (WIFSIGNALED(status))
        r->signal = WTERMSIG(status);
    return 0;
}

void fz_proc_result_free(fz_proc_result *r)
{
    free(r->out);
    free(r->err);
    memset(r, 0, sizeof *r);
}

const char *fz_proc_outcome(const fz_proc_result *r, char *buf, size_t size)
{
    if (r->timed_out)
        snprintf(buf, size, "timed out after %.0f s", r->seconds);
    else if (r->signal)
        snprintf(buf, size, "killed by signal %d (%s)", r->signal, strsignal(r->signal));
    else
        snprintf(buf, size, "exit %d", r->exit_code);
    return buf;
}
