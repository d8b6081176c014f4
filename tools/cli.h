/* The asyncfat command's shared pieces: exit codes, messages, the options every subcommand
 * takes, naming images and the files in them, the Ctrl-C flag, and a session (the driver
 * and server on an image, with this process as their client through fs_client).
 * Subcommands live in cmd_*.c; every one but the offline ones (mkfs, check, info, label)
 * works only through a session, never on the FAT engine.
 *
 * Messages: every one on stderr is "asyncfat: WHAT: reason", lower case, WHAT naming the
 * file (IMAGE:PATH, or a local path) or the subcommand.
 */
#ifndef ASYNCFAT_TOOLS_CLI_H
#define ASYNCFAT_TOOLS_CLI_H

#include "platform/linux/fs_system.h"
#include "tools/fs_client.h"

#include <signal.h>
#include <stdio.h>

#define ASYNCFAT_VERSION "0.1"

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
/* strerror in the messages' style (lower case). */
const char *cli_errno_text(int err);
int cli_usage(const char *cmd, const char *usage);
/* After getopt returned '?' or ':' (option strings start with ':'): says which option was
 * wrong, then the usage; returns EXIT_USAGE. */
int cli_bad_option(const char *cmd, const char *usage, int ch, char **argv);

/* The options every subcommand takes (asyncfat --help), taken out of its arguments before
 * it parses its own. */
typedef struct cli_globals {
    const char *image;            /* -i IMAGE / --image IMAGE: ::PATH names a file in it */
    uint32_t partition;           /* --partition N; 0: none given */
    bool at_offset;               /* --offset BYTES given */
    uint64_t offset;
    int32_t time_offset_minutes;  /* --tz, --time-offset; default: the local zone's now */
    bool discard;                 /* --discard: freed clusters are passed to the device */
} cli_globals;
extern cli_globals cli_global;
/* A time zone as --tz and mount's tz= take it: "UTC", "local", or an offset east of UTC
 * (+HH, +HH:MM, +HHMM, or -), into minutes east of UTC. */
bool cli_parse_zone(const char *zone, int32_t *minutes);
/* Minutes east of UTC as --time-offset and vfat's time_offset= take them (-1440..1440). */
bool cli_parse_minutes(const char *s, int32_t *minutes);
/* Take the common options out of argv[1..*argc) (argv[0] is the subcommand's name), and
 * --version. Returns -1 to go on, or an exit code (a message was printed). */
int cli_take_global_options(int *argc, char **argv);

/* An image as named on the command line: FILE, FILE@N (partition N of its table) or
 * FILE@@OFFSET (the volume at a byte offset, as mtools writes it), the common options
 * applied. FILE is a regular file or a block device. */
typedef struct cli_image {
    char file[4096];
    fs_component_volume volume;
} cli_image;
/* false if the name names no existing file (in any of its forms). */
bool cli_image_resolve(const char *name, cli_image *out);

/* An argument that names a file in an image (IMAGE:PATH, or ::PATH with -i) or a local
 * file. It names an image when some ':' splits it into an existing image and a path; the
 * path is made absolute ("/" when empty). */
#define CLI_PATH_MAX 32768u     /* bytes of an operand's path, with its NUL (the server's
                                   paths are any length: fs_client sends deep ones from fds) */
typedef struct cli_location {
    bool in_image;
    bool too_long;              /* the path did not fit in `path`: the operand is refused */
    char image[4096];           /* the image as named (for messages and cli_session_open) */
    char path[CLI_PATH_MAX];    /* the image path, or the local path */
    char missing[4096];         /* not in an image but with a ':': the name before it */
} cli_location;
void cli_parse_location(const char *arg, cli_location *out);
/* Like cli_parse_location, but an existing image with no ':' is IMAGE with path "/". */
bool cli_parse_image_arg(const char *arg, cli_location *out);
/* For an operand that should have named an image: "no such image" (or why the name
 * before the ':' is not one); returns EXIT_FAILED. */
int cli_fail_not_image(const char *arg, const cli_location *loc);
/* Where a location is, for messages: IMAGE:PATH, or the local path. */
const char *cli_where(const cli_location *loc);
/* "IMAGE:PATH" (valid until the next call in this thread). */
const char *cli_in_image(const char *image, const char *path);

/* The connection last: the end of its pending table is the part a short command never
 * touches (fs_client.h), so the pages it does touch are together. */
typedef struct cli_session {
    char image[4096];           /* as named */
    cli_image resolved;
    bool started, connected, initialised;
    fs_system system;
    fs_conn conn;
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

/* Start the system on the image (as named: FILE, FILE@N, FILE@@OFFSET), connect and
 * INITIALISE. On failure it says why (no such image, not a FAT volume and why, no such
 * partition) and returns -1. share_bytes 0: the default; the data region is fs_system's
 * default (the mount's). */
int cli_session_open(cli_session *s, const char *image, bool read_only, uint64_t share_bytes);
/* The same with the block data region's size (0: the default; CLI_DATA_BYTES for a
 * one-shot command). */
int cli_session_open_sized(cli_session *s, const char *image, bool read_only, uint64_t share_bytes,
                           uint64_t data_bytes);
/* The same for a short read-only look at a few directories (ls): the system's regions in
 * 4 KiB pages (fs_system_options.small_pages), the block data region CLI_DATA_BYTES. */
int cli_session_open_small(cli_session *s, const char *image);
/* DEINITIALISE (the server syncs and unmounts), disconnect, stop. Returns 0, or -1 if the
 * volume could not be unmounted cleanly (after a message). */
int cli_session_close(cli_session *s);
/* A subcommand's exit status: rc, EXIT_FAILED if closing the session failed where rc was
 * EXIT_OK, EXIT_INTERRUPTED after a signal. Closes the session. */
int cli_session_finish(cli_session *s, int rc);
/* The same for the command's last session, when nothing but the process's exit follows:
 * after DEINITIALISE the driver and the server (run inline) are left for the kernel to take
 * down at exit, in one go, instead of a system call for each mapping, ring and descriptor
 * (0.3 ms of the 3.9 ms `asyncfat ls` of a small volume took in the virtual machine
 * measured). Where the server runs elsewhere (another process) or under LeakSanitizer, as
 * cli_session_finish. */
int cli_session_finish_last(cli_session *s, int rc);
/* Is this path (in an image) the root: empty or nothing but slashes? */
bool cli_path_is_root(const char *path);

/* Why the volume an image names cannot be mounted, read from the image itself (its
 * partition table and boot sector): writes a sentence and returns true, or false when
 * its boot sector looks right (the damage is elsewhere). */
bool cli_diagnose_volume(const cli_image *img, char *why, size_t why_size);

/* Join a directory path and a name; false if it did not fit in size bytes (out is then
 * cut short). */
bool cli_join(char *out, size_t size, const char *dir, const char *name);
const char *cli_basename(const char *path);
bool cli_is_dir_stat(const fs_stat *st);
/* As ls -h and df -h print sizes: 999, 1.5K, 23M (powers of 1024, rounded up). */
void cli_human_size(uint64_t n, char *out, size_t size);
/* "drwxr-xr-x", and "2024-01-31 23:59" in local time. */
void cli_mode_string(const fs_stat *st, char out[11]);
void cli_time_string(uint64_t t, char *out, size_t size);
/* "256M", "1G", "4096", "64KiB", "2048s" (512-byte sectors when allow_sectors): bytes, or
 * false if malformed. */
bool cli_parse_size(const char *s, bool allow_sectors, uint64_t *out);

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
int cmd_attrib(int argc, char **argv);
int cmd_info(int argc, char **argv);
int cmd_label(int argc, char **argv);

/* True if argv[1..] holds --help or -h (the subcommand then prints its usage, exit 0). */
bool cli_wants_help(int argc, char **argv);

#endif
