/* A test client's own configuration (section .test_client_config), written by
 * sel4/gen_system.py next to the client's LionsOS .fs_client_config and sDDF
 * .serial_client_config. */
#ifndef ASYNCFAT_SEL4_CLIENTS_TEST_CONFIG_H
#define ASYNCFAT_SEL4_CLIENTS_TEST_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#define TC_MAGIC "afclient"
#define TC_MAGIC_LEN 8

/* What the client does (bits of roles; gen_system.py ROLES), in the order linux_files,
 * pair, workload, bad_inputs, crash_check, bench, crash_writer, idle_writer. */
enum {
    TC_ROLE_WORKLOAD = 1u << 0,     /* files of 0 B .. MiB, names, dirs, readdir, rename, ... */
    TC_ROLE_LINUX_FILES = 1u << 1,  /* read back the files the test put on the disk */
    TC_ROLE_BAD_INPUTS = 1u << 2,   /* stale and invalid fds, bad buffers, paths, commands */
    TC_ROLE_PAIR = 1u << 3,         /* work alongside the fs server's other clients */
    TC_ROLE_CRASH_WRITER = 1u << 4, /* write and sync until the machine is stopped */
    TC_ROLE_CRASH_CHECK = 1u << 5,  /* after a cut: what was synced is intact */
    TC_ROLE_BENCH = 1u << 6,        /* requests per second at 1 and 32 in flight */
    TC_ROLE_IDLE_WRITER = 1u << 7,  /* write without a sync, then idle: write-back's timer */
};

/* A LionsOS client sends INITIALISE with zero parameters and gets LionsOS's commands,
 * flags and statuses; an asyncfat client opts in to the extensions (docs/PROTOCOL.md). */
enum {
    TC_DIALECT_LIONSOS = 0,
    TC_DIALECT_ASYNCFAT = 1,
};

typedef struct tc_config {
    uint8_t magic[TC_MAGIC_LEN];
    uint32_t roles;
    uint32_t index;                 /* this client's number among its server's clients */
    uint32_t peers;                 /* how many clients the server has */
    uint32_t dialect;               /* TC_DIALECT_*: what it asks for at INITIALISE */
    uint64_t seed;
    char name[16];                  /* printed before every line */
    char dir[32];                   /* its own directory */
    char shared_dir[32];            /* the directory all of its server's clients share */
} tc_config;

_Static_assert(sizeof(tc_config) == 112, "tc_config layout");
_Static_assert(offsetof(tc_config, seed) == 24 && offsetof(tc_config, name) == 32 &&
                   offsetof(tc_config, dir) == 48 && offsetof(tc_config, shared_dir) == 80,
               "tc_config layout");

#endif
