/* The test client PDs' framework: a LionsOS file-system client in freestanding C.
 *
 * A client PD speaks the LionsOS protocol to asyncfat through its command queue, completion
 * queue and share region (.fs_client_config) and prints through sDDF's serial subsystem
 * (.serial_client_config), so release builds report as debug builds do. Its test code runs
 * in fibers (asyncfat's FiberPool): a file-system call queues its command and blocks the
 * calling fiber until the completion with its id arrives, so many fibers keep many requests
 * in flight at once. The PD notifies the server once per pass, after every ready fiber has
 * run.
 *
 * Output: one line per check, "<name>| PASS <check>" or "<name>| FAIL <check>: <why>", then
 * "<name>| <n> passed, <m> failed" when every role has run (sel4/test_sel4.sh reads them).
 */
#ifndef ASYNCFAT_SEL4_CLIENTS_CLIENT_H
#define ASYNCFAT_SEL4_CLIENTS_CLIENT_H

#include "base/base.h"
#include "protocol/fs_protocol.h"
#include "sel4/clients/test_config.h"

#define TC_FIBERS 48u
#define TC_STACK_BYTES 16384u
/* The end of each fiber's area holds the paths it sends; data goes before it. */
#define TC_PATH_AREA 12288u
#define TC_CHUNK (1024u * 1024u) /* the most data one call moves */

extern tc_config test_config;

/* The client opted in to asyncfat's extensions (TC_DIALECT_ASYNCFAT); otherwise it is
 * served as LionsOS serves it, and checks expect LionsOS's statuses. */
static inline bool tc_extensions(void) { return test_config.dialect == TC_DIALECT_ASYNCFAT; }

/* ---- output and checks ---- */
void tc_printf(const char *format, ...) __attribute__((format(printf, 1, 2)));
void tc_pass(const char *check);
void tc_fail(const char *check, const char *format, ...) __attribute__((format(printf, 2, 3)));
/* Pass or fail `check` by `ok`; the why is printed on failure. Returns ok. */
bool tc_expect(bool ok, const char *check, const char *format, ...) __attribute__((format(printf, 3, 4)));
uint64_t tc_passed(void);
uint64_t tc_failed(void);

/* ---- the share region ---- */
/* The calling fiber's own part of the share region (tc_area_bytes bytes), and a buffer
 * naming bytes of it (or of anywhere in the share region). */
uint8_t *tc_area(void);
size_t tc_area_bytes(void);
fs_buffer tc_buffer(const void *p, size_t size);
uint8_t *tc_share(void);
uint64_t tc_share_bytes(void);
/* A path in the caller's area (NUL-terminated there too); returns its buffer. */
fs_buffer tc_path(const char *path);

/* ---- file-system calls: block the calling fiber until the completion arrives ---- */
typedef struct tc_reply {
    uint64_t status;
    uint64_t data;
} tc_reply;
/* Any command, unknown ones included: the completion's status and data. */
tc_reply tc_call(uint64_t type, const fs_cmd_params *params);
uint64_t tc_open(const char *path, uint64_t flags, uint64_t *fd);
uint64_t tc_close(uint64_t fd);
uint64_t tc_write(uint64_t fd, uint64_t offset, const void *src, size_t len, uint64_t *done);
uint64_t tc_read(uint64_t fd, uint64_t offset, void *dst, size_t len, uint64_t *done);
uint64_t tc_size(uint64_t fd, uint64_t *size);
uint64_t tc_truncate(uint64_t fd, uint64_t length);
uint64_t tc_sync(uint64_t fd);
uint64_t tc_stat(const char *path, fs_stat *st);
uint64_t tc_mkdir(const char *path);
uint64_t tc_rmdir(const char *path);
uint64_t tc_unlink(const char *path);
uint64_t tc_rename(const char *from, const char *to);
uint64_t tc_opendir(const char *path, uint64_t *fd);
uint64_t tc_closedir(uint64_t fd);
/* One entry's name into name (NUL-terminated, at most 767 bytes); END_OF_DIRECTORY at the end. */
uint64_t tc_readdir(uint64_t fd, char *name, size_t name_size);
uint64_t tc_seekdir(uint64_t fd, int64_t loc);
uint64_t tc_telldir(uint64_t fd, uint64_t *loc);
uint64_t tc_rewinddir(uint64_t fd);

/* ---- fibers ---- */
/* Run fn(i, arg) for i < n in up to `width` fibers at once, and wait for all of them. */
void tc_parallel(uint32_t n, uint32_t width, void (*fn)(uint32_t i, void *arg), void *arg);
/* Requests in flight right now, and the most there have been. */
uint32_t tc_in_flight(void);
uint32_t tc_most_in_flight(void);

/* ---- helpers ---- */
uint64_t tc_time_ns(void);
/* When INITIALISE was sent and answered, on the clock above (which starts at the
 * machine's power-on: QEMU's counter and time CSR start at reset). */
extern uint64_t tc_initialise_sent_ns, tc_initialise_answered_ns;
uint64_t tc_random(uint64_t *state);
/* Deterministic contents: byte i of a file named by `seed`. */
void tc_fill(uint8_t *dst, size_t len, uint64_t seed, uint64_t offset);
/* Index of the first byte that differs from tc_fill's, or len. */
size_t tc_verify(const uint8_t *src, size_t len, uint64_t seed, uint64_t offset);
size_t tc_strlen(const char *s);
/* dst = a + b (+ c), NUL-terminated, cut at size. */
void tc_join(char *dst, size_t size, const char *a, const char *b, const char *c);
const char *tc_status_name(uint64_t status);

/* ---- the roles (one file each) ---- */
void tc_role_workload(void);
void tc_role_linux_files(void);
void tc_role_bad_inputs(void);
void tc_role_pair(void);
void tc_role_crash_writer(void);
void tc_role_crash_check(void);
void tc_role_bench(void);
void tc_role_idle_writer(void);

#endif
