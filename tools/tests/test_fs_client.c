/* fs_client against a fake server thread over real queues, share region and eventfds:
 * many calls in flight from many threads, completions in any order, the share allocator,
 * the parameter layouts of the blocking calls, a dead server, and the status mappings. */
#include "tests/harness.h"
#include "tools/fs_client.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#define SHARE_BYTES (1u << 20)

typedef struct fake_server {
    fs_queue *commands, *completions;
    uint8_t *share;
    int client_to_server, server_to_client;
    fs_queue_end cmd_end, cmpl_end;
    pthread_t thread;
    volatile bool stop;
    uint32_t batch;            /* hold commands until this many arrived, then answer reversed */
    uint64_t seed;
    fs_cmd last;               /* the last command seen */
    char last_path[256];
    uint64_t max_held;
} fake_server;

static void answer(fake_server *f, const fs_cmd *cmd, fs_cmpl *out)
{
    memset(out, 0, sizeof *out);
    out->id = cmd->id;
    const fs_cmd_params *ext = &cmd->params;
    switch (cmd->type) {
    case FS_CMD_STAT: {
        fs_buffer p = cmd->params.stat.path;
        size_t n = p.size < sizeof f->last_path - 1 ? p.size : sizeof f->last_path - 1;
        memcpy(f->last_path, f->share + p.offset, n);
        f->last_path[n] = '\0';
        fs_stat st = {.size = 1234, .mode = FS_MODE_REGULAR | 0644, .mtime = 99};
        memcpy(f->share + cmd->params.stat.buf.offset, &st, sizeof st);
        break;
    }
    case FS_CMD_FILE_READ: /* fill with the low byte of the offset */
        memset(f->share + cmd->params.file_read.buf.offset, (int)(cmd->params.file_read.offset & 0xff),
               cmd->params.file_read.buf.size);
        out->data = cmd->params.file_read.buf.size;
        break;
    case FS_CMD_FILE_WRITE:
        out->data = cmd->params.file_write.buf.size;
        break;
    case FS_CMD_STATFS: {
        fs_statfs sf = {.block_size = 4096, .blocks = 10, .fat_type = 32};
        memcpy(f->share + ext->statfs.buf.offset, &sf, sizeof sf);
        break;
    }
    case FS_CMD_FILE_SIZE: /* echo the fd, so each caller can check it got its own answer */
        out->data = cmd->params.file_size.fd * 3;
        break;
    case FS_CMD_FILE_REMOVE:
        out->status = FS_STATUS_NO_FILE;
        break;
    default:
        break;
    }
    f->last = *cmd;
}

static void *fake_main(void *arg)
{
    fake_server *f = arg;
    fs_msg held[FS_QUEUE_CAPACITY];
    uint32_t count = 0;
    while (!f->stop) {
        struct pollfd p = {.fd = f->client_to_server, .events = POLLIN};
        if (poll(&p, 1, 20) > 0) {
            uint64_t v;
            if (read(f->client_to_server, &v, sizeof v) < 0)
                break;
        }
        count += fs_queue_consume(&f->cmd_end, held + count, FS_QUEUE_CAPACITY - count);
        if (count > f->max_held)
            f->max_held = count;
        if (count == 0 || count < f->batch)
            continue;
        fs_msg out[FS_QUEUE_CAPACITY];
        for (uint32_t i = 0; i < count; i++)
            answer(f, &held[count - 1 - i].cmd, &out[i].cmpl);
        fs_queue_produce(&f->cmpl_end, out, count);
        count = 0;
        uint64_t one = 1;
        if (write(f->server_to_client, &one, sizeof one) < 0)
            break;
    }
    return NULL;
}

static bool fake_start(fake_server *f, fs_conn *c, uint32_t batch, bool (*healthy)(void *), void *ctx)
{
    memset(f, 0, sizeof *f);
    f->commands = calloc(1, sizeof(fs_queue));
    f->completions = calloc(1, sizeof(fs_queue));
    f->share = aligned_alloc(4096, SHARE_BYTES);
    f->client_to_server = eventfd(0, EFD_CLOEXEC);
    f->server_to_client = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    f->batch = batch;
    fs_queue_end_init(&f->cmd_end, f->commands, false);
    fs_queue_end_init(&f->cmpl_end, f->completions, true);
    if (pthread_create(&f->thread, NULL, fake_main, f) != 0)
        return false;
    fs_conn_endpoint ep = {
        .commands = f->commands,
        .completions = f->completions,
        .share = f->share,
        .share_size = SHARE_BYTES,
        .notify_fd = f->client_to_server,
        .wait_fd = f->server_to_client,
        .healthy = healthy,
        .healthy_ctx = ctx,
    };
    return fs_conn_open(c, &ep) == 0;
}

static void fake_stop(fake_server *f, fs_conn *c)
{
    fs_conn_close(c);
    f->stop = true;
    pthread_join(f->thread, NULL);
    close(f->client_to_server);
    close(f->server_to_client);
    free(f->commands);
    free(f->completions);
    free(f->share);
}

TEST(completions_in_reverse_order_reach_their_callers)
{
    fake_server f;
    fs_conn c;
    CHECK(fake_start(&f, &c, 16, NULL, NULL));
    fs_conn_ticket t[16];
    fs_cmd cmd[16];
    for (uint32_t i = 0; i < 16; i++) {
        memset(&cmd[i], 0, sizeof cmd[i]);
        cmd[i].type = FS_CMD_FILE_SIZE;
        cmd[i].params.file_size.fd = 100 + i;
        t[i] = fs_conn_submit(&c, &cmd[i]);
    }
    bool ok = true;
    for (uint32_t i = 0; i < 16; i++) {
        fs_cmpl cmpl;
        fs_conn_wait(&c, t[i], &cmpl);
        ok = ok && cmpl.status == FS_STATUS_SUCCESS && cmpl.data == (100 + i) * 3 && cmpl.id == cmd[i].id;
    }
    uint64_t held = f.max_held;
    uint32_t pending = c.max_pending;
    fake_stop(&f, &c);
    CHECK(ok);
    CHECK_EQ(held, 16); /* all sixteen were in flight at once */
    CHECK_EQ(pending, 16);
}

TEST(wait_any_returns_each_completion_once)
{
    fake_server f;
    fs_conn c;
    /* The fake answers a batch of 8 in reverse order. */
    CHECK(fake_start(&f, &c, 8, NULL, NULL));
    fs_conn_ticket t[8];
    uint64_t fd_of[8];
    for (uint32_t i = 0; i < 8; i++) {
        fs_cmd cmd;
        memset(&cmd, 0, sizeof cmd);
        cmd.type = FS_CMD_FILE_SIZE;
        cmd.params.file_size.fd = fd_of[i] = 200 + i;
        t[i] = fs_conn_submit(&c, &cmd);
    }
    /* A plain wait on one of them first: the others complete meanwhile, for wait_any. */
    fs_cmpl cmpl;
    fs_conn_wait(&c, t[3], &cmpl);
    bool ok = cmpl.data == 203 * 3, seen[8] = {false};
    seen[3] = true;
    t[3] = t[7];
    fd_of[3] = fd_of[7];
    for (uint32_t n = 7; n > 0; n--) {
        uint32_t k = fs_conn_wait_any(&c, t, n, &cmpl);
        ok = ok && k < n && cmpl.status == FS_STATUS_SUCCESS && cmpl.data == fd_of[k] * 3 && !seen[fd_of[k] - 200];
        seen[fd_of[k] - 200] = true;
        /* the caller keeps its live tickets packed: the last moves into the freed place */
        t[k] = t[n - 1];
        fd_of[k] = fd_of[n - 1];
    }
    uint32_t pending = c.pending;
    fake_stop(&f, &c);
    CHECK(ok);
    for (uint32_t i = 0; i < 8; i++)
        CHECK(seen[i]);
    CHECK_EQ(pending, 0);
}

typedef struct worker {
    fs_conn *c;
    uint32_t index;
    bool ok;
} worker;

static void *worker_main(void *arg)
{
    worker *w = arg;
    w->ok = true;
    for (uint32_t i = 0; i < 200; i++) {
        uint64_t size = 0;
        uint64_t fd = w->index * 1000 + i;
        fs_status st = fs_conn_file_size(w->c, fd, &size);
        if (st != FS_STATUS_SUCCESS || size != fd * 3)
            w->ok = false;
        char buf[5000];
        size_t got = 0;
        st = fs_conn_read(w->c, 1, 0x40 + w->index, buf, sizeof buf, &got);
        if (st != FS_STATUS_SUCCESS || got != sizeof buf || (uint8_t)buf[4999] != 0x40 + w->index)
            w->ok = false;
    }
    return NULL;
}

TEST(many_threads_share_one_connection)
{
    fake_server f;
    fs_conn c;
    CHECK(fake_start(&f, &c, 1, NULL, NULL));
    worker w[8];
    pthread_t th[8];
    for (uint32_t i = 0; i < 8; i++) {
        w[i] = (worker){.c = &c, .index = i};
        CHECK(pthread_create(&th[i], NULL, worker_main, &w[i]) == 0);
    }
    bool ok = true;
    for (uint32_t i = 0; i < 8; i++) {
        pthread_join(th[i], NULL);
        ok = ok && w[i].ok;
    }
    uint64_t calls = c.calls;
    fake_stop(&f, &c);
    CHECK(ok);
    CHECK_EQ(calls, 8 * 200 * 2);
}

TEST(blocking_calls_lay_out_their_parameters)
{
    fake_server f;
    fs_conn c;
    CHECK(fake_start(&f, &c, 1, NULL, NULL));
    fs_stat st;
    fs_status s1 = fs_conn_stat(&c, "/dir/file.txt", &st);
    char seen[256];
    strcpy(seen, f.last_path);
    fs_statfs sf;
    fs_status s2 = fs_conn_statfs(&c, &sf);
    fs_status s3 = fs_conn_remove(&c, "/missing");
    size_t put = 0;
    char data[300000];
    memset(data, 7, sizeof data);
    fs_status s4 = fs_conn_write(&c, 5, 10, data, sizeof data, &put);
    fs_cmd last = f.last;
    fake_stop(&f, &c);
    CHECK_EQ(s1, FS_STATUS_SUCCESS);
    CHECK(strcmp(seen, "/dir/file.txt") == 0);
    CHECK_EQ(st.size, 1234);
    CHECK_EQ(st.mtime, 99);
    CHECK_EQ(s2, FS_STATUS_SUCCESS);
    CHECK_EQ(sf.fat_type, 32);
    CHECK_EQ(s3, FS_STATUS_NO_FILE);
    CHECK_EQ(s4, FS_STATUS_SUCCESS);
    CHECK_EQ(put, sizeof data);
    /* Written in chunks: the last one starts after the first FS_CONN_IO_CHUNK bytes. */
    CHECK_EQ(last.type, FS_CMD_FILE_WRITE);
    CHECK_EQ(last.params.file_write.offset, 10 + FS_CONN_IO_CHUNK);
    CHECK_EQ(last.params.file_write.buf.size, sizeof data - FS_CONN_IO_CHUNK);
}

typedef struct freer {
    fs_conn *c;
    void *p;
} freer;

static void *free_later(void *arg)
{
    freer *fr = arg;
    usleep(20000);
    fs_conn_free(fr->c, fr->p);
    return NULL;
}

TEST(share_allocator_fits_frees_and_waits)
{
    fake_server f;
    fs_conn c;
    CHECK(fake_start(&f, &c, 1, NULL, NULL));
    uint8_t *a = fs_conn_alloc(&c, 1);
    uint8_t *b = fs_conn_alloc(&c, FS_CONN_PAGE + 1);
    uint8_t *d = fs_conn_alloc(&c, 10);
    bool layout = a == f.share && b == a + FS_CONN_PAGE && d == b + 2 * FS_CONN_PAGE;
    fs_conn_free(&c, b);
    uint8_t *e = fs_conn_alloc(&c, 2 * FS_CONN_PAGE); /* fits b's hole */
    bool reuse = e == b;
    bool too_big = fs_conn_alloc(&c, SHARE_BYTES + 1) == NULL;
    fs_conn_free(&c, a);
    fs_conn_free(&c, d);
    fs_conn_free(&c, e);
    uint8_t *all = fs_conn_alloc(&c, SHARE_BYTES);
    freer fr = {&c, all};
    pthread_t th;
    bool started = pthread_create(&th, NULL, free_later, &fr) == 0;
    uint8_t *again = started ? fs_conn_alloc(&c, 100) : NULL; /* waits for the free */
    if (started)
        pthread_join(th, NULL);
    fs_conn_free(&c, again);
    fake_stop(&f, &c);
    CHECK(layout);
    CHECK(reuse);
    CHECK(too_big);
    CHECK(all == f.share);
    CHECK(again == f.share);
}

static bool dead(void *ctx)
{
    AF_UNUSED(ctx);
    return false;
}

TEST(a_dead_server_fails_pending_calls_instead_of_hanging)
{
    fake_server f;
    fs_conn c;
    /* batch 2: the fake never answers a lone command. */
    CHECK(fake_start(&f, &c, 2, dead, NULL));
    uint64_t size = 0;
    fs_status st = fs_conn_file_size(&c, 1, &size);
    fs_status after = fs_conn_file_size(&c, 1, &size);
    fake_stop(&f, &c);
    CHECK_EQ(st, FS_STATUS_IO_ERROR);
    CHECK_EQ(after, FS_STATUS_IO_ERROR);
}

TEST(bogus_completion_ids_are_ignored)
{
    fake_server f;
    fs_conn c;
    CHECK(fake_start(&f, &c, 1, NULL, NULL));
    fs_msg bogus[2];
    memset(bogus, 0, sizeof bogus);
    bogus[0].cmpl.id = 77;                  /* a slot never used */
    bogus[1].cmpl.id = (5ull << 16) | 0;    /* slot 0 with a wrong generation */
    fs_queue_produce(&f.cmpl_end, bogus, 2);
    uint64_t one = 1;
    CHECK(write(f.server_to_client, &one, sizeof one) == sizeof one);
    uint64_t size = 0;
    fs_status st = fs_conn_file_size(&c, 4, &size);
    fake_stop(&f, &c);
    CHECK_EQ(st, FS_STATUS_SUCCESS);
    CHECK_EQ(size, 12);
}

TEST(statuses_map_to_posix_errnos_and_messages)
{
    CHECK_EQ(fs_status_to_errno(FS_STATUS_SUCCESS), 0);
    CHECK_EQ(fs_status_to_errno(FS_STATUS_NO_FILE), ENOENT);
    CHECK_EQ(fs_status_to_errno(FS_STATUS_ALREADY_EXISTS), EEXIST);
    CHECK_EQ(fs_status_to_errno(FS_STATUS_NOT_DIRECTORY), ENOTDIR);
    CHECK_EQ(fs_status_to_errno(FS_STATUS_IS_DIRECTORY), EISDIR);
    CHECK_EQ(fs_status_to_errno(FS_STATUS_NOT_EMPTY), ENOTEMPTY);
    CHECK_EQ(fs_status_to_errno(FS_STATUS_NAME_TOO_LONG), ENAMETOOLONG);
    CHECK_EQ(fs_status_to_errno(FS_STATUS_NO_SPACE), ENOSPC);
    CHECK_EQ(fs_status_to_errno(FS_STATUS_DIRECTORY_IS_FULL), ENOSPC);
    CHECK_EQ(fs_status_to_errno(FS_STATUS_FILE_TOO_LARGE), EFBIG);
    CHECK_EQ(fs_status_to_errno(FS_STATUS_READ_ONLY_FS), EROFS);
    CHECK_EQ(fs_status_to_errno(FS_STATUS_INVALID_ARGUMENT), EINVAL);
    CHECK_EQ(fs_status_to_errno(FS_STATUS_IO_ERROR), EIO);
    CHECK_EQ(fs_status_to_errno(FS_STATUS_ERROR), EIO);
    CHECK_EQ(fs_status_to_errno((fs_status)999), EIO);
    for (int s = 0; s <= 30; s++)
        CHECK(fs_status_string((fs_status)s)[0] != '\0');
    CHECK(strcmp(fs_status_string(FS_STATUS_NO_FILE), "no such file or directory") == 0);
}
