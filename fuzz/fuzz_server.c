/* libFuzzer target: the server's command handling from a hostile client.
 *
 * The whole server runs in-process on the RAM device (a template image), with two
 * clients: a hostile one driven by the input and a well-behaved one. The input is a
 * program of operations: commands with raw parameters, commands whose paths, fds and
 * buffers are drawn from plausible values (or hostile ones), writes into the share region
 * while commands are in flight, rewritten queue counters (head, tail, notify threshold),
 * server passes, reading completions, and probes by the well-behaved client.
 * Oracles:
 *  - the well-behaved client's probe (STAT "/") is answered, once, with SUCCESS;
 *  - while the hostile client leaves its counters alone, every completion answers a
 *    command it sent, once;
 *  - once the hostile client puts its counters back, the server becomes idle, both
 *    clients' DEINITIALISE succeed and the volume is unmounted;
 *  - the checker then finds the volume clean (nothing a client can send corrupts it).
 */
#include "fat/fat_check.h"
#include "fuzz/fz_target.h"
#include "server/server.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SHARE_SIZE (64u * 1024u)
#define PATH_SLOTS 16u
#define PATH_SLOT_SIZE 512u
#define BUFFERS_START (PATH_SLOTS * PATH_SLOT_SIZE)
#define MAX_OPS 256u
#define MAX_STEPS 20000u
#define TRACKED 2048u

typedef struct client {
    fs_queue *commands, *completions;
    uint8_t *share;
    fs_queue_end command_end, completion_end;
    uint64_t next_id;
} client;

typedef struct reader {
    const uint8_t *data;
    size_t size, at;
} reader;

typedef struct run {
    fz_image_input in;
    fat_vfs fat;
    fs_server server;
    client c[2];
    reader rd;
    bool tampered;              /* the hostile client rewrote a counter */
    uint8_t sent_type[TRACKED]; /* by id % TRACKED: type + 1 of an unanswered command, 0: none */
    uint64_t fds[32];
    uint32_t fd_count;
    fs_cmd last;
    bool have_last;
} run;

static const char *const paths[] = {
    "/", "/readme.txt", "/sub", "/sub/a.txt", "/new.txt", "/sub/new dir",
    "/a much longer name that needs several lfn slots.bin", "/sub/deeper/x.bin", "", "/sub/../readme.txt",
    "//sub///a.txt/", "/x/y/z", "/sub/deeper/d3", "/Long Directory Name/inner file.dat", "/sub/f1",
    "/sub/deeper",
};

static uint8_t take8(reader *r) { return r->at < r->size ? r->data[r->at++] : 0; }
static uint64_t take64(reader *r)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v |= (uint64_t)take8(r) << (8 * i);
    return v;
}

static void client_setup(client *c)
{
    if (!c->commands) {
        c->commands = aligned_alloc(64, sizeof(fs_queue));
        c->completions = aligned_alloc(64, sizeof(fs_queue));
        c->share = aligned_alloc(4096, SHARE_SIZE);
        if (!c->commands || !c->completions || !c->share)
            abort();
    }
    memset(c->commands, 0, sizeof(fs_queue));
    memset(c->completions, 0, sizeof(fs_queue));
    memset(c->share, 0, SHARE_SIZE);
    fs_queue_end_init(&c->command_end, c->commands, true);
    fs_queue_end_init(&c->completion_end, c->completions, false);
    c->next_id = 1;
}

static bool step(run *r)
{
    bool device = ram_device_process(&r->in.rig->dev) != 0;
    bool server = fs_server_notified(&r->server);
    return device || server || ram_device_pending(&r->in.rig->dev) != 0;
}

static bool verbose(void)
{
    static int v = -1;
    if (v < 0)
        v = getenv("ASYNCFAT_FUZZ_VERBOSE") != NULL;
    return v;
}

static void note_completion(run *r, const fs_cmpl *m)
{
    uint8_t type = r->sent_type[m->id % TRACKED];
    if (verbose())
        fprintf(stderr, "  completion id %llu status %llu data %llu (command type %d)\n", (unsigned long long)m->id,
                (unsigned long long)m->status, (unsigned long long)m->data, type - 1);
    if (!r->tampered) {
        if (m->id == 0 || m->id >= r->c[0].next_id || type == 0)
            fz_oracle_failed("server", "completion for id %llu, which is not an unanswered command",
                             (unsigned long long)m->id);
    }
    r->sent_type[m->id % TRACKED] = 0;
    if (type == 0 || m->status != FS_STATUS_SUCCESS)
        return;
    type--;
    if (type == FS_CMD_FILE_OPEN || type == FS_CMD_DIR_OPEN || type == FS_CMD_OPEN_STAT || type == FS_CMD_OPEN_READ)
        r->fds[r->fd_count++ % 32] = m->data;
}

/* Read what the completion queue holds, at most a queue's worth: with its counters
 * rewritten the client may see a queue that is never empty. */
static void drain(run *r)
{
    fs_msg m;
    for (uint32_t i = 0; i < FS_QUEUE_CAPACITY && fs_queue_consume(&r->c[0].completion_end, &m, 1) == 1; i++)
        note_completion(r, &m.cmpl);
}

static void submit(run *r, const fs_cmd *cmd)
{
    client *c = &r->c[0];
    fs_msg m;
    memset(&m, 0, sizeof m);
    m.cmd = *cmd;
    m.cmd.id = c->next_id;
    if (fs_queue_produce(&c->command_end, &m, 1) != 1)
        return;
    if (!r->tampered && r->sent_type[c->next_id % TRACKED] != 0)
        fz_oracle_failed("server", "more than %u commands unanswered", TRACKED);
    /* type + 1, so that 0 means "no command"; any type past 253 is recorded as 254. */
    r->sent_type[c->next_id % TRACKED] = (uint8_t)(cmd->type < 254 ? cmd->type + 1 : 255);
    if (verbose())
        fprintf(stderr, "  command id %llu type %llu\n", (unsigned long long)c->next_id, (unsigned long long)cmd->type);
    c->next_id++;
    r->last = m.cmd;
    r->have_last = true;
}

static fs_buffer path_arg(run *r)
{
    uint8_t k = take8(&r->rd);
    if (k >= 0xF0)
        return (fs_buffer){take64(&r->rd), take64(&r->rd)};
    unsigned slot = k % PATH_SLOTS;
    const char *p = paths[k % AF_ARRAY_LEN(paths)];
    size_t len = strlen(p);
    memcpy(r->c[0].share + slot * PATH_SLOT_SIZE, p, len);
    return (fs_buffer){slot * PATH_SLOT_SIZE, len};
}

static fs_buffer buffer_arg(run *r)
{
    uint8_t a = take8(&r->rd), b = take8(&r->rd);
    if (a >= 0xF0)
        return (fs_buffer){take64(&r->rd), take64(&r->rd)};
    uint64_t offset = BUFFERS_START + (uint64_t)(a % 56) * 1024;
    uint64_t size = ((uint64_t)b + 1) * 64;
    if (size > SHARE_SIZE - offset)
        size = SHARE_SIZE - offset;
    return (fs_buffer){offset, size};
}

static uint64_t fd_arg(run *r)
{
    uint8_t k = take8(&r->rd);
    if (k >= 0xF0 || r->fd_count == 0)
        return k >= 0xF0 ? take64(&r->rd) : k;
    return r->fds[k % (r->fd_count < 32 ? r->fd_count : 32)];
}

static uint64_t offset_arg(run *r)
{
    uint8_t k = take8(&r->rd);
    return k == 0xFF ? take64(&r->rd) : (uint64_t)k * 512;
}

/* A command of `type` with arguments drawn from the input. */
static void structured(run *r, uint64_t type)
{
    fs_cmd cmd;
    memset(&cmd, 0, sizeof cmd);
    cmd.type = type;
    fs_cmd_params *p = &cmd.params;
    fs_cmd_params *e = &cmd.params;
    switch (type) {
    case FS_CMD_FILE_OPEN: p->file_open.path = path_arg(r); p->file_open.flags = take8(&r->rd) & 0x3F; break;
    case FS_CMD_FILE_CLOSE: case FS_CMD_FILE_SIZE: case FS_CMD_FILE_SYNC: case FS_CMD_DIR_CLOSE:
    case FS_CMD_DIR_TELL: case FS_CMD_DIR_REWIND:
        p->file_close.fd = fd_arg(r);
        break;
    case FS_CMD_STAT: p->stat.path = path_arg(r); p->stat.buf = buffer_arg(r); break;
    case FS_CMD_FILE_READ: case FS_CMD_FILE_WRITE:
        p->file_read.fd = fd_arg(r);
        p->file_read.offset = offset_arg(r);
        p->file_read.buf = buffer_arg(r);
        break;
    case FS_CMD_RENAME: p->rename.old_path = path_arg(r); p->rename.new_path = path_arg(r); break;
    case FS_CMD_FILE_REMOVE: case FS_CMD_DIR_CREATE: case FS_CMD_DIR_REMOVE: case FS_CMD_DIR_OPEN:
        p->file_remove.path = path_arg(r);
        break;
    case FS_CMD_FILE_TRUNCATE: p->file_truncate.fd = fd_arg(r); p->file_truncate.length = offset_arg(r); break;
    case FS_CMD_DIR_READ: p->dir_read.fd = fd_arg(r); p->dir_read.buf = buffer_arg(r); break;
    case FS_CMD_DIR_SEEK: p->dir_seek.fd = fd_arg(r); p->dir_seek.loc = (int64_t)offset_arg(r) / 512 - 2; break;
    case FS_CMD_STATFS: e->statfs.buf = buffer_arg(r); break;
    case FS_CMD_FSTAT: e->fstat.fd = fd_arg(r); e->fstat.buf = buffer_arg(r); break;
    case FS_CMD_SET_TIMES:
    case FS_CMD_SET_TIMES_STAT:
        e->set_times_stat.path = path_arg(r);
        /* Times from -1 (keep) to far past FAT's range; unsigned arithmetic, no overflow. */
        e->set_times_stat.atime = (int64_t)(offset_arg(r) * 1000u - 1u);
        e->set_times_stat.mtime = (int64_t)(offset_arg(r) * 100000u - 1u);
        if (type == FS_CMD_SET_TIMES_STAT)
            e->set_times_stat.stat = buffer_arg(r);
        break;
    case FS_CMD_FILE_SET_TIMES:
        e->file_set_times.fd = fd_arg(r);
        e->file_set_times.atime = (int64_t)(offset_arg(r) * 1000u - 1u);
        e->file_set_times.mtime = (int64_t)(offset_arg(r) * 100000u - 1u);
        break;
    case FS_CMD_DIR_READ_STAT:
        e->dir_read_stat.fd = fd_arg(r);
        e->dir_read_stat.name = buffer_arg(r);
        e->dir_read_stat.stat = buffer_arg(r);
        break;
    case FS_CMD_OPEN_STAT:
    case FS_CMD_OPEN_READ:
        e->open_stat.path = path_arg(r);
        e->open_stat.flags = take8(&r->rd) & 0x3F;
        e->open_stat.stat = buffer_arg(r);
        break;
    case FS_CMD_DIR_READ_BATCH: e->dir_read_batch.fd = fd_arg(r); e->dir_read_batch.buf = buffer_arg(r); break;
    case FS_CMD_READ_PATH:
        e->read_path.path = path_arg(r);
        e->read_path.offset = offset_arg(r);
        e->read_path.buf = buffer_arg(r);
        break;
    default: break;
    }
    submit(r, &cmd);
}

static void tamper(run *r)
{
    uint8_t which = take8(&r->rd) % 5;
    uint8_t how = take8(&r->rd);
    uint64_t v = how >= 0x80 ? take64(&r->rd) : 0;
    client *c = &r->c[0];
    uint64_t *field = which == 0 ? &c->commands->head : which == 1 ? &c->commands->tail
                      : which == 2 ? &c->completions->head : which == 3 ? &c->completions->tail
                                   : &c->completions->notify_threshold;
    if (how < 0x80)
        v = *field + (uint64_t)(int64_t)(int8_t)(how - 0x40);
    *field = v;
    r->tampered = true;
    if (verbose())
        fprintf(stderr, "  tamper %u = %llu\n", which, (unsigned long long)v);
}

/* The well-behaved client: STAT "/" must be answered, once, with SUCCESS. */
static void probe(run *r, uint64_t type)
{
    client *c = &r->c[1];
    memcpy(c->share, "/", 1);
    fs_msg m;
    memset(&m, 0, sizeof m);
    m.cmd.id = c->next_id++;
    m.cmd.type = type;
    if (type == FS_CMD_STAT) {
        m.cmd.params.stat.path = (fs_buffer){0, 1};
        m.cmd.params.stat.buf = (fs_buffer){4096, sizeof(fs_stat)};
    }
    if (fs_queue_produce(&c->command_end, &m, 1) != 1)
        fz_oracle_failed("server", "the well-behaved client's queue is full");
    for (uint32_t i = 0; i < MAX_STEPS; i++) {
        step(r);
        fs_msg got;
        if (fs_queue_consume(&c->completion_end, &got, 1) == 1) {
            if (got.cmpl.id != m.cmd.id)
                fz_oracle_failed("server", "the well-behaved client got completion %llu for command %llu",
                                 (unsigned long long)got.cmpl.id, (unsigned long long)m.cmd.id);
            if (got.cmpl.status != FS_STATUS_SUCCESS)
                fz_oracle_failed("server", "the well-behaved client's command %llu failed with %llu",
                                 (unsigned long long)type, (unsigned long long)got.cmpl.status);
            return;
        }
    }
    fz_oracle_failed("server", "the well-behaved client's command %llu was not answered", (unsigned long long)type);
}

/* Resynchronise the hostile client's counters with the server's private ones (peeked
 * here, as a client that keeps its own books would know them), so that nothing is left
 * to take and every published completion counts as read. */
static void recover(run *r)
{
    client *c = &r->c[0];
    uint64_t taken = r->server.clients[0].commands.own;
    uint64_t published = r->server.clients[0].completions.own;
    c->commands->head = c->commands->tail = c->command_end.own = taken;
    c->completions->head = c->completions->tail = c->completion_end.own = published;
    c->completions->notify_threshold = 0;
}

typedef struct check_job {
    fz_rig *rig;
    fat_check_result result;
    vfs_status status;
} check_job;

static void *check_task(void *arg)
{
    check_job *j = arg;
    fat_check_volume cv;
    j->status = fat_check_volume_find(&j->rig->cache, 0, &cv);
    if (j->status != VFS_OK)
        return NULL;
    size_t need = fat_check_memory_needed(&cv.geo);
    fat_check_options o = {.work = fz_target_work(need), .work_size = need};
    j->status = fat_check_run(&j->rig->cache, &cv, &o, &j->result);
    return NULL;
}

static run R;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    run *r = &R;
    fs_queue *keep[2][2] = {{r->c[0].commands, r->c[0].completions}, {r->c[1].commands, r->c[1].completions}};
    uint8_t *keep_share[2] = {r->c[0].share, r->c[1].share};
    memset(r, 0, sizeof *r);
    for (int i = 0; i < 2; i++) {
        r->c[i].commands = keep[i][0];
        r->c[i].completions = keep[i][1];
        r->c[i].share = keep_share[i];
        client_setup(&r->c[i]);
    }
    /* The server runs on an undamaged template: the selector picks which. */
    if (!fz_target_load(data, size ? 1 : 0, 0, false, &r->in))
        return 0;
    r->rd = (reader){data, size, 1};
    fat_config cfg = fz_target_fat_config(r->in.rig);
    fs_server_config sc = {
        .pool = &r->in.rig->pool,
        .blk = &r->in.rig->client,
        .engine = fat_vfs_engine(&r->fat, &r->in.rig->cache, &cfg),
    };
    fs_server_init(&r->server, &sc);
    for (int i = 0; i < 2; i++) {
        fs_connection_config cc = {.commands = r->c[i].commands, .completions = r->c[i].completions,
                                   .share = r->c[i].share, .share_size = SHARE_SIZE};
        if (fs_server_add_connection(&r->server, &cc) != i)
            abort();
    }
    probe(r, FS_CMD_INITIALISE);
    fs_cmd init = {.type = FS_CMD_INITIALISE};
    submit(r, &init);

    for (uint32_t ops = 0; ops < MAX_OPS && r->rd.at < r->rd.size; ops++) {
        uint8_t op = take8(&r->rd);
        switch (op % 10) {
        case 0: {
            fs_cmd cmd;
            cmd.type = take8(&r->rd);
            if (cmd.type >= 0xF0)
                cmd.type = take64(&r->rd);
            for (size_t i = 0; i < sizeof cmd.params.raw; i++)
                cmd.params.raw[i] = take8(&r->rd);
            submit(r, &cmd);
            break;
        }
        case 1: case 2: case 3:
            structured(r, take8(&r->rd) % FS_CMD_COUNT);
            break;
        case 4: {
            uint16_t at = (uint16_t)(take8(&r->rd) | take8(&r->rd) << 8);
            uint8_t len = take8(&r->rd);
            for (uint8_t i = 0; i < len; i++)
                r->c[0].share[(at + i) % SHARE_SIZE] = take8(&r->rd);
            break;
        }
        case 5:
            tamper(r);
            break;
        case 6: {
            uint8_t n = take8(&r->rd) % 16 + 1;
            for (uint8_t i = 0; i < n; i++)
                step(r);
            break;
        }
        case 7:
            drain(r);
            break;
        case 8:
            probe(r, FS_CMD_STAT);
            break;
        case 9: {
            uint8_t n = take8(&r->rd) % 8;
            for (uint8_t i = 0; i < n && r->have_last; i++) {
                fs_cmd again = r->last;
                submit(r, &again);
            }
            break;
        }
        }
    }
    probe(r, FS_CMD_STAT);

    /* The hostile client puts its counters back and reads everything. */
    recover(r);
    uint32_t i = 0;
    for (; i < MAX_STEPS; i++) {
        step(r);
        drain(r);
        if (fs_server_idle(&r->server) && ram_device_pending(&r->in.rig->dev) == 0)
            break;
    }
    if (i == MAX_STEPS)
        fz_oracle_failed("server", "the server did not become idle after the client recovered");
    fs_cmd deinit = {.type = FS_CMD_DEINITIALISE};
    r->tampered = true; /* ids before recovery may be answered out of the tracked window */
    submit(r, &deinit);
    for (i = 0; i < MAX_STEPS && !fs_server_idle(&r->server); i++) {
        step(r);
        drain(r);
    }
    probe(r, FS_CMD_DEINITIALISE);
    for (i = 0; i < MAX_STEPS && (!fs_server_idle(&r->server) || ram_device_pending(&r->in.rig->dev)); i++)
        step(r);
    drain(r);
    if (r->fat.volume.mounted)
        fz_oracle_failed("server", "the volume is still mounted after every client's DEINITIALISE");

    check_job cj = {.rig = r->in.rig};
    if (!fz_rig_run(r->in.rig, check_task, &cj))
        fz_oracle_failed("server", "the check after the run deadlocked");
    if (cj.status == VFS_OK && cj.result.problems != 0)
        fz_oracle_failed("server",
                         "after the clients' commands the checker finds %u problems: bad_links %u loops %u "
                         "cross_links %u lost %u sizes %u entries %u lfns %u fats %u fsinfo %u boot %u dirty %u",
                         cj.result.problems, cj.result.bad_links, cj.result.loops, cj.result.cross_links,
                         cj.result.lost_clusters, cj.result.size_mismatches, cj.result.bad_entries,
                         cj.result.orphan_lfns, cj.result.fat_mismatches, cj.result.fsinfo_errors,
                         cj.result.boot_errors, cj.result.dirty);
    return 0;
}
