/* fz_proc: run a program with a time limit and capture what it prints, for the image
 * mutator and the seed builder. The program runs in its own process group, so a timeout
 * kills it together with the processes it started (the asyncfat command's driver and
 * server). Hosted. */
#ifndef ASYNCFAT_FUZZ_FZ_PROC_H
#define ASYNCFAT_FUZZ_FZ_PROC_H

#include <stdbool.h>
#include <stddef.h>

typedef struct fz_proc_result {
    int exit_code;              /* when it exited */
    int signal;                 /* when a signal ended it (0 otherwise) */
    bool timed_out;             /* killed at the time limit */
    bool left_behind;           /* processes it started still ran a second after it exited */
    char *out, *err;            /* NUL-terminated, at most FZ_PROC_CAPTURE bytes each (the head) */
    size_t out_len, err_len;
    double seconds;
} fz_proc_result;

#define FZ_PROC_CAPTURE (1u << 20)

/* argv[0] is looked up in PATH. stdin is /dev/null. cwd may be NULL. Returns 0 when the
 * program ran (whatever its outcome), -1 when it could not be started. */
int fz_proc_run(char *const argv[], const char *cwd, double timeout_seconds, fz_proc_result *r);
void fz_proc_result_free(fz_proc_result *r);
/* "exit 3", "signal 11", "timed out after 20 s". */
const char *fz_proc_outcome(const fz_proc_result *r, char *buf, size_t size);

#endif
