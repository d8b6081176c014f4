/* The asyncfat command's shared pieces: exit codes, messages, IMAGE:PATH arguments, the
 * Ctrl-C flag, and a session (the driver and server processes on an image, with this
 * process as their client through fs_client). Subcommands live in cmd_*.c; every one but
 * mkfs and check works only through a session, never on the FAT engine.
 */
#ifndef ASYNCFAT_TOOLS_CLI_H
#define ASYNCFAT_TOOLS_CLI_H

#include "platform/linux/fs_system.h"
#include "tools/fs_client.h"

#include <signal.h>
#include <stdio.h>

enum {
    EXIT_OK = 0,
    EXIT_FAILED = 1,       /* the operation failed (the message says why) */
    EXIT_USAGE = 2,        /* bad arguments */
    EXIT_INTERRUPTED = 130 /* SIGINT or SIGTERM: stopped cleanly */
};

extern volatile sig_atomic_t cli_interrupted;
/* Catch SIGINT and SIGTERM: set cli_interrupted, so that loops stop between requests;
 * the command ends anyway CLI_INTERRUPT_GRACE_S after the first, at once at a second. */
#define CLI_INTERRUPT_GRACE_S 10u
void cli_catch_signals(void);

/* "asyncfat: <what>: <reason>" on stderr. */
void cli_error(const char *what, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* For a failed call on image:path; returns EXIT_FAILED. */
int cli_fail_status(const char *image, const char *path, fs_status st);
/* For a failed system call on a local path; returns EXIT_FAILED. */
int cli_fail_errno(const char *path, int err);
int cli_usage(const char *cmd, const char *usage);

/* An argument that names a file in an image (IMAGE:PATH) or a local file. It names an
 * image when some ':' splits it into an existing file and a path; the path is made
 * absolute ("/" when empty). */
typedef struct cli_location {
    bool in_image;
    char image[4096];
    char path[4096];         /* the image path, or the local path */
} cli_location;
void cli_parse_location(const char *arg, cli_location *out);
/* Like cli_parse_location, but an existing file with no ':' is IMAGE with path "/". */
bool cli_parse_image_arg(const char *arg, cli_location *out);

typedef struct cli_session {
    fs_system system;
    fs_conn conn;
    char image[4096];
    bool started, connected, initialised;
} cli_session;

/* The block data region of a one-shot command (ls, cat, cp, ...): 4 MiB, in which the
 * server keeps 1 MiB of staging slots and a 3 MiB cache (blk_stack_plan shrinks the
 * staging to fit). A command that runs once needs little of either, and a large one costs
 * it: every buffer or staging page it first uses is a fresh memfd page to fault in and
 * clear (tens of microseconds each in some virtual machines), and every dirty buffer is
 * left to write back at unmount (cp -r of 20 MiB of small files: 10,500 page faults with
 * the 48 MiB default, 3,150 with 20 MiB, 1,760 with this). File data of large transfers
 * moves between the device and the command's share region, not through the cache. */
#define CLI_DATA_BYTES (4u << 20)

/* Start the system on the image, connect and INITIALISE (prints the reason on failure).
 * share_bytes 0: the default; the data region is fs_system's default (the mount's). */
int cli_session_open(cli_session *s, const char *image, bool read_only, uint64_t share_bytes);
/* The same with the block data region's size (0: the default; CLI_DATA_BYTES for a
 * one-shot command). */
int cli_session_open_sized(cli_session *s, const char *image, bool read_only, uint64_t share_bytes,
                           uint64_t data_bytes);
/* DEINITIALISE (the server syncs and unmounts), disconnect, stop. Returns 0, or -1 if the
 * volume could not be unmounted cleanly (after a message). */
int cli_session_close(cli_session *s);

/* Join a directory path and a name; false if it did not fit in size bytes (out is then
 * cut short). */
bool cli_join(char *out, size_t size, const char *dir, const char *name);
const char *cli_basename(const char *path);
bool cli_is_dir_stat(const fs_stat *st);

/* Subcommands: argc/argv start at the subcommand's name. */
int cmd_mkfs(int argc, char **argv);
int cmd_check(int argc, char **argv);
int cmd_ls(int argc, char **argv);
int cmd_cat(int argc, char **argv);
int cmd_stat(int argc, char **argv);
int cmd_df(int argc, char **argv);
int cmd_cp(int argc, char **argv);
int cmd_mkdir(int argc, char **argv);
int cmd_rm(int argc, char **argv);
int cmd_rmdir(int argc, char **argv);
int cmd_mv(int argc, char **argv);
int cmd_mount(int argc, char **argv);

/* True if argv[1..] holds --help or -h (the subcommand then prints its usage, exit 0). */
bool cli_wants_help(int argc, char **argv);

#endif
