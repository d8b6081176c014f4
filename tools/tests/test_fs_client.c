/* fs_client against a fake server thread over real queues, share region and eventfds:
 * many calls in flight from many threads, completions in any order, the share allocator,
 * the parameter layouts of the blocking and asynchronous calls and the decoding of their
 * replies, event-driven use (no thread waits; completions and refusals through a
 * callback), a dead server, and the status mappings. */
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
    fs_cmd seen[FS_CMD_COUNT]; /* the last command of each type */
    uint32_t received;         /* commands seen */
    char last_path[256];
    uint64_t max_held;
    uint32_t dir_opens;        /* DIR_OPENs answered */
    uint64_t closed[8];        /* the fds of the first DIR_CLOSEs */
    uint32_t closes;
} fake_server;

/* A stat record that names the path it was made for: size = its length, ino = its first byte. */
static fs_stat stat_for(const fake_server *f, fs_buffer path)
{
    return (fs_stat){.size = path.size, .ino = path.size ? f->share[path.offset] : 0, .mode = FS_MODE_REGULAR};
}

/* DIR_READ_BATCH: two records ("a", "bcd"); for fd 666 a second record that runs past the
 * buffer. */
static uint64_t fill_batch(fake_server *f, const fs_cmd *cmd)
{
    uint8_t *b = f->share + cmd->params.dir_read_batch.buf.offset;
    fs_dir_record r = {.stat = {.ino = 7}, .name_len = 1};
    memcpy(b, &r, sizeof r);
    b[sizeof r] = 'a';
    size_t at = FS_DIR_RECORD_SIZE(1);
    r = (fs_dir_record){.stat = {.ino = 8}, .name_len = cmd->params.dir_read_batch.fd == 666 ? 1u << 20 : 3};
    memcpy(b + at, &r, sizeof r);
    memcpy(b + at + sizeof r, "bcd", 3);
    return 2;
}

static void answer(fake_server *f, const fs_cmd *cmd, fs_cmpl *out)
{
    memset(out, 0, sizeof *out);
    out->id = cmd->id;
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
        memcpy(f->share + cmd->params.statfs.buf.offset, &sf, sizeof sf);
        break;
    }
    case FS_CMD_FILE_SIZE: /* echo the fd, so each caller can check it got its own answer */
        out->data = cmd->params.file_size.fd * 3;
        break;
    case FS_CMD_FILE_REMOVE:
        out->status = FS_STATUS_NO_FILE;
        break;
    case FS_CMD_FILE_OPEN:
        out->data = 40 + cmd->params.file_open.path.size;
        break;
    case FS_CMD_OPEN_STAT: {
        fs_stat st = stat_for(f, cmd->params.open_stat.path);
        memcpy(f->share + cmd->params.open_stat.stat.offset, &st, sizeof st);
        out->data = 50;
        break;
    }
    case FS_CMD_SET_TIMES_STAT: {
        fs_stat st = stat_for(f, cmd->params.set_times_stat.path);
        st.mtime = (uint64_t)cmd->params.set_times_stat.mtime & ~1ull; /* FAT's two seconds */
        memcpy(f->share + cmd->params.set_times_stat.stat.offset, &st, sizeof st);
        break;
    }
    case FS_CMD_OPEN_READ:
    case FS_CMD_READ_PATH: { /* a 10-byte file of 'x' */
        fs_buffer buf = cmd->type == FS_CMD_OPEN_READ ? cmd->params.open_read.buf : cmd->params.read_path.buf;
        fs_open_read_record rec = {.stat = stat_for(f, cmd->params.open_read.path), .read = 10};
        rec.stat.size = 10;
        memcpy(f->share + buf.offset, &rec, sizeof rec);
        memset(f->share + buf.offset + sizeof rec, 'x', 10);
        out->data = cmd->type == FS_CMD_OPEN_READ ? 60 : 0;
        break;
    }
    case FS_CMD_DIR_READ_BATCH:
        out->data = fill_batch(f, cmd);
        break;
    case FS_CMD_GET_ATTRIBUTES: /* the path's length, as bits */
        out->data = cmd->params.get_attributes.path.size;
        break;
    case FS_CMD_SET_ATTRIBUTES:
        out->data = (0x20u & ~cmd->params.set_attributes.clear) | cmd->params.set_attributes.set;
        break;
    case FS_CMD_DIR_OPEN: /* fds 700, 701, ... in order, so a test can tell them apart */
        out->data = 700 + f->dir_opens++;
        break;
    default:
        break;
    }
    if (cmd->type == FS_CMD_DIR_CLOSE && f->closes < 8)
        f->closed[f->closes++] = cmd->params.dir_close.fd;
    f->last = *cmd;
    if (cmd->type < FS_CMD_COUNT)
        f->seen[cmd->type] = *cmd;
    f->received++;
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

TEST(async_calls_encode_their_commands_and_decode_their_replies)
{
    fake_server f;
    fs_conn c;
    /* The fake answers all eight together, in reverse order. */
    CHECK(fake_start(&f, &c, 8, NULL, NULL));
    uint8_t *buf = fs_conn_alloc(&c, 8192);
    fs_call call[8];
    fs_conn_start_open(&c, &call[0], 0, "/src/a.txt", FS_OPEN_FLAGS_READ_ONLY);
    fs_conn_start_open_stat(&c, &call[1], 0, "/dst/a.txt", FS_OPEN_FLAGS_WRITE_ONLY | FS_OPEN_FLAGS_CREATE);
    fs_conn_start_read(&c, &call[2], 3, 4096, buf, 4096);
    fs_conn_start_write(&c, &call[3], 4, 512, buf + 4096, 100);
    fs_conn_start_set_times(&c, &call[4], 0, "/dst/a.txt", -1, 1234567);
    fs_conn_start_truncate(&c, &call[5], 4, 0);
    fs_conn_start_mkdir(&c, &call[6], 0, "/dst/sub");
    fs_conn_start_file_set_times(&c, &call[7], 4, 7654321, 1234568);
    fs_conn_ticket t[8];
    for (uint32_t i = 0; i < 8; i++)
        t[i] = call[i].ticket;
    fs_reply reply[8];
    bool ok = true, done[8] = {false};
    for (uint32_t n = 8; n > 0; n--) {
        fs_cmpl cmpl;
        uint32_t k = fs_conn_wait_any(&c, t, n, &cmpl);
        uint32_t which = 0;
        while (call[which].ticket != t[k] || done[which])
            which++;
        fs_conn_finish(&c, &call[which], &cmpl, &reply[which]);
        ok = ok && reply[which].status == FS_STATUS_SUCCESS && call[which].share == NULL;
        done[which] = true;
        t[k] = t[n - 1];
    }
    fs_cmd open = f.seen[FS_CMD_FILE_OPEN], read = f.seen[FS_CMD_FILE_READ], write = f.seen[FS_CMD_FILE_WRITE];
    fs_cmd times = f.seen[FS_CMD_SET_TIMES], trunc = f.seen[FS_CMD_FILE_TRUNCATE];
    fs_cmd mkdir = f.seen[FS_CMD_DIR_CREATE], ftimes = f.seen[FS_CMD_FILE_SET_TIMES];
    fs_conn_free(&c, buf);
    uint32_t pending = c.pending;
    fake_stop(&f, &c);
    CHECK(ok);
    CHECK_EQ(pending, 0);
    CHECK_EQ(open.params.file_open.flags, FS_OPEN_FLAGS_READ_ONLY);
    CHECK_EQ(reply[0].data, 40 + strlen("/src/a.txt"));
    CHECK_EQ(reply[1].data, 50);
    CHECK_EQ(reply[1].record.stat.size, strlen("/dst/a.txt"));
    CHECK_EQ(reply[1].record.stat.ino, '/');
    CHECK_EQ(read.params.file_read.fd, 3);
    CHECK_EQ(read.params.file_read.offset, 4096);
    CHECK_EQ(read.params.file_read.buf.size, 4096);
    CHECK_EQ(reply[2].data, 4096);
    CHECK_EQ(write.params.file_write.fd, 4);
    CHECK_EQ(write.params.file_write.offset, 512);
    CHECK_EQ(write.params.file_write.buf.offset, read.params.file_read.buf.offset + 4096);
    CHECK_EQ(reply[3].data, 100);
    CHECK_EQ(times.params.set_times.atime, -1);
    CHECK_EQ(times.params.set_times.mtime, 1234567);
    CHECK_EQ(times.params.set_times.path.size, strlen("/dst/a.txt"));
    CHECK_EQ(trunc.params.file_truncate.fd, 4);
    CHECK_EQ(trunc.params.file_truncate.length, 0);
    CHECK_EQ(mkdir.params.dir_create.path.size, strlen("/dst/sub"));
    CHECK_EQ(ftimes.type, FS_CMD_FILE_SET_TIMES);
    CHECK_EQ(ftimes.params.file_set_times.fd, 4);
    CHECK_EQ(ftimes.params.file_set_times.atime, 7654321);
    CHECK_EQ(ftimes.params.file_set_times.mtime, 1234568);
}

TEST(attribute_calls_name_their_path_and_bits)
{
    fake_server f;
    fs_conn c;
    CHECK(fake_start(&f, &c, 1, NULL, NULL));
    uint64_t got = 0, set = 0;
    fs_status s1 = fs_conn_get_attributes(&c, "/abc", &got);
    fs_cmd get = f.last;
    char path[8] = {0};
    memcpy(path, c.ep.share + get.params.get_attributes.path.offset, 4);
    fs_status s2 = fs_conn_set_attributes(&c, "/x/y", FS_ATTRIBUTE_HIDDEN | FS_ATTRIBUTE_READ_ONLY, FS_ATTRIBUTE_ARCHIVE,
                                          &set);
    fs_cmd put = f.last;
    fs_call call;
    fs_conn_start_set_attributes(&c, &call, 0, "/z", FS_ATTRIBUTE_SYSTEM, 0);
    fs_cmpl cmpl;
    fs_reply reply;
    fs_conn_wait(&c, call.ticket, &cmpl);
    fs_conn_finish(&c, &call, &cmpl, &reply);
    fake_stop(&f, &c);
    CHECK_EQ(s1, FS_STATUS_SUCCESS);
    CHECK_EQ(get.type, FS_CMD_GET_ATTRIBUTES);
    CHECK_EQ(got, 4);
    CHECK(strcmp(path, "/abc") == 0);
    CHECK_EQ(s2, FS_STATUS_SUCCESS);
    CHECK_EQ(put.type, FS_CMD_SET_ATTRIBUTES);
    CHECK_EQ(put.params.set_attributes.path.size, 4);
    CHECK_EQ(put.params.set_attributes.set, FS_ATTRIBUTE_HIDDEN | FS_ATTRIBUTE_READ_ONLY);
    CHECK_EQ(put.params.set_attributes.clear, FS_ATTRIBUTE_ARCHIVE);
    CHECK_EQ(set, FS_ATTRIBUTE_HIDDEN | FS_ATTRIBUTE_READ_ONLY);
    CHECK_EQ(reply.status, FS_STATUS_SUCCESS);
    CHECK_EQ(reply.data, FS_ATTRIBUTE_ARCHIVE | FS_ATTRIBUTE_SYSTEM);
}

TEST(both_forms_of_initialise_opt_in_to_the_extensions)
{
    fake_server f;
    fs_conn c;
    CHECK(fake_start(&f, &c, 1, NULL, NULL));
    fs_status blocking = fs_conn_initialise(&c);
    fs_cmd first = f.seen[FS_CMD_INITIALISE];
    fs_call call;
    fs_conn_start_initialise(&c, &call);
    fs_cmpl cmpl;
    fs_conn_wait_any(&c, &call.ticket, 1, &cmpl);
    fs_reply reply;
    fs_conn_finish(&c, &call, &cmpl, &reply);
    fs_cmd second = f.seen[FS_CMD_INITIALISE];
    fake_stop(&f, &c);
    CHECK_EQ(blocking, FS_STATUS_SUCCESS);
    CHECK_EQ(reply.status, FS_STATUS_SUCCESS);
    CHECK_EQ(first.params.initialise.magic, FS_INITIALISE_MAGIC);
    CHECK_EQ(first.params.initialise.flags, FS_INITIALISE_EXTENSIONS);
    CHECK_EQ(second.params.initialise.magic, FS_INITIALISE_MAGIC);
    CHECK_EQ(second.params.initialise.flags, FS_INITIALISE_EXTENSIONS);
}

TEST(a_path_too_long_completes_at_once_and_sends_nothing)
{
    fake_server f;
    fs_conn c;
    CHECK(fake_start(&f, &c, 1, NULL, NULL));
    char path[FS_MAX_PATH_LENGTH + 2];
    memset(path, 'a', sizeof path - 1);
    path[0] = '/';
    path[sizeof path - 1] = '\0';
    fs_call call;
    fs_conn_start_open(&c, &call, 0, path, FS_OPEN_FLAGS_READ_ONLY);
    fs_cmpl cmpl;
    fs_reply reply;
    fs_conn_wait(&c, call.ticket, &cmpl);
    fs_conn_finish(&c, &call, &cmpl, &reply);
    fs_status renamed = fs_conn_rename(&c, "/ok", path);
    fs_stat st;
    fs_status stat_st = fs_conn_stat(&c, path, &st);
    path[FS_MAX_PATH_LENGTH] = '\0'; /* the longest a path may be */
    fs_status longest = fs_conn_stat(&c, path, &st);
    uint32_t received = f.received;
    fake_stop(&f, &c);
    /* The encoder refuses it; the blocking calls would send a long path from directories
     * opened along it, but 4,096 bytes without a '/' after the first is one name far over
     * 255 bytes: NAME_TOO_LONG, and nothing is sent either. */
    CHECK_EQ(reply.status, FS_STATUS_INVALID_PATH);
    CHECK_EQ(renamed, FS_STATUS_NAME_TOO_LONG);
    CHECK_EQ(stat_st, FS_STATUS_NAME_TOO_LONG);
    CHECK_EQ(longest, FS_STATUS_SUCCESS);
    CHECK_EQ(received, 1);
}

/* A blocking call's path too long for one command goes from directories opened along it:
 * DIR_OPEN of the longest prefix that fits (cut at a '/'), the next prefix from that fd,
 * then the call with the rest from the last fd; each fd is closed once it is not needed. */
TEST(a_long_path_goes_from_directories_opened_along_it)
{
    fake_server f;
    fs_conn c;
    CHECK(fake_start(&f, &c, 1, NULL, NULL));
    static char path[9000];
    size_t n = 0;
    for (int i = 0; n + 201 < sizeof path - 1; i++) {
        path[n++] = '/';
        memset(path + n, 'a' + i % 26, 200);
        n += 200;
    }
    path[n] = '\0'; /* 44 names of 200 bytes: 8,844 bytes */
    fs_stat st;
    fs_status status = fs_conn_stat(&c, path, &st);
    fs_cmd stat_cmd = f.seen[FS_CMD_STAT], open_cmd = f.seen[FS_CMD_DIR_OPEN];
    uint32_t received = f.received, opens = f.dir_opens, closes = f.closes;
    uint64_t closed[2] = {f.closed[0], f.closed[1]};
    char rest[4096] = {0};
    memcpy(rest, f.share + stat_cmd.params.stat.path.offset, FS_PATH_AT_LENGTH(stat_cmd.params.stat.path.size) % 4096);
    fake_stop(&f, &c);
    CHECK_EQ(status, FS_STATUS_SUCCESS);
    CHECK_EQ(opens, 2);                       /* 4,020 bytes, 4,020 more, then the rest */
    CHECK_EQ(FS_PATH_AT_FD(open_cmd.params.dir_open.path.size), 700); /* the second from the first */
    CHECK_EQ(FS_PATH_AT_FD(stat_cmd.params.stat.path.size), 701);
    CHECK_EQ(FS_PATH_AT_LENGTH(stat_cmd.params.stat.path.size), n - 2 * 20 * 201);
    CHECK(strcmp(rest, path + 2 * 20 * 201) == 0);
    CHECK_EQ(received, 5);                    /* 2 DIR_OPEN, 1 DIR_CLOSE between, STAT, DIR_CLOSE */
    CHECK_EQ(closes, 2);
    CHECK(closed[0] == 700 && closed[1] == 701);
}

TEST(record_replies_decode_and_a_bad_batch_is_refused)
{
    fake_server f;
    fs_conn c;
    CHECK(fake_start(&f, &c, 1, NULL, NULL));
    uint64_t fd = 0;
    fs_stat st;
    fs_status s1 = fs_conn_open_stat(&c, "/new.txt", FS_OPEN_FLAGS_CREATE, &fd, &st);
    bool open_stat_ok = s1 == FS_STATUS_SUCCESS && fd == 50 && st.size == strlen("/new.txt");
    fs_status s2 = fs_conn_set_times_stat(&c, "/new.txt", 5, 1001, &st);
    bool times_ok = s2 == FS_STATUS_SUCCESS && st.mtime == 1000;
    char bytes[64];
    size_t got = 0;
    fs_status s3 = fs_conn_open_read(&c, "/r", FS_OPEN_FLAGS_READ_ONLY, &fd, &st, bytes, sizeof bytes, &got);
    bool open_read_ok = s3 == FS_STATUS_SUCCESS && fd == 60 && got == 10 && bytes[9] == 'x' && st.size == 10;
    fs_status s4 = fs_conn_read_path(&c, "/r", &st, bytes, 4, &got);
    bool read_path_ok = s4 == FS_STATUS_SUCCESS && got == 4 && f.last.type == FS_CMD_READ_PATH;
    uint8_t batch[4096];
    uint64_t count = 0;
    fs_status s5 = fs_conn_readdir_batch(&c, 5, batch, sizeof batch, &count);
    char name[FS_CONN_NAME_MAX + 1];
    size_t at = fs_dir_batch_record(batch, 0, &st, name);
    bool first = strcmp(name, "a") == 0 && st.ino == 7;
    at = fs_dir_batch_record(batch, at, &st, name);
    bool second = strcmp(name, "bcd") == 0 && st.ino == 8;
    memset(batch, 0xee, sizeof batch);
    fs_status s6 = fs_conn_readdir_batch(&c, 666, batch, sizeof batch, &count);
    bool untouched = batch[0] == 0xee && batch[sizeof batch - 1] == 0xee;
    fake_stop(&f, &c);
    CHECK(open_stat_ok);
    CHECK(times_ok);
    CHECK(open_read_ok);
    CHECK(read_path_ok);
    CHECK_EQ(s5, FS_STATUS_SUCCESS);
    CHECK_EQ(count, 2);
    CHECK(first);
    CHECK(second);
    CHECK_EQ(at, FS_DIR_RECORD_SIZE(1) + FS_DIR_RECORD_SIZE(3));
    CHECK_EQ(s6, FS_STATUS_ERROR);
    CHECK(untouched);
}

TEST(pread_and_pwrite_are_one_request_whatever_their_size)
{
    fake_server f;
    fs_conn c;
    CHECK(fake_start(&f, &c, 1, NULL, NULL));
    static uint8_t data[600000];
    size_t done = 0;
    fs_status r = fs_conn_pread(&c, 9, 0x33, data, sizeof data, &done);
    bool read_ok = r == FS_STATUS_SUCCESS && done == sizeof data && data[sizeof data - 1] == 0x33;
    uint32_t after_read = f.received;
    fs_status w = fs_conn_pwrite(&c, 9, 0, data, sizeof data, &done);
    bool write_ok = w == FS_STATUS_SUCCESS && done == sizeof data;
    uint32_t after_write = f.received;
    fs_status too_big = fs_conn_pread(&c, 9, 0, data, SHARE_BYTES + 1, &done);
    fake_stop(&f, &c);
    CHECK(read_ok);
    CHECK(write_ok);
    CHECK_EQ(after_read, 1);
    CHECK_EQ(after_write, 2);
    CHECK_EQ(too_big, FS_STATUS_INVALID_ARGUMENT);
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

/* ---- event-driven use ---- */

typedef struct event_log {
    int notify_fd;
    uint32_t notified;
    uint32_t delivered;
    uint32_t tickets[32];
    fs_cmpl cmpls[32];
} event_log;

static void event_notify(void *ctx)
{
    event_log *log = ctx;
    uint64_t one = 1;
    log->notified++;
    if (write(log->notify_fd, &one, sizeof one) != sizeof one)
        abort();
}

static void event_completed(void *ctx, uint32_t ticket, const fs_cmpl *cmpl)
{
    event_log *log = ctx;
    if (log->delivered < 32) {
        log->tickets[log->delivered] = ticket;
        log->cmpls[log->delivered] = *cmpl;
    }
    log->delivered++;
}

TEST(event_driven_calls_complete_through_the_callback)
{
    fake_server f;
    fs_conn c;
    event_log log = {0};
    CHECK(fake_start(&f, &c, 8, NULL, NULL));
    fs_conn_close(&c); /* reopened event-driven on the same queues */
    log.notify_fd = f.client_to_server;
    fs_conn_endpoint ep = {
        .commands = f.commands,
        .completions = f.completions,
        .share = f.share,
        .share_size = SHARE_BYTES,
        .notify_fd = -1,
        .wait_fd = -1,
        .notify = event_notify,
        .completed = event_completed,
        .event_ctx = &log,
    };
    CHECK(fs_conn_open(&c, &ep) == 0);
    fs_call calls[9];
    char paths[8][16];
    for (int i = 0; i < 8; i++) {
        snprintf(paths[i], sizeof paths[i], "/%c%.*s", 'a' + i, i, "xxxxxxxx");
        fs_conn_start_open(&c, &calls[i], 0, paths[i], FS_OPEN_FLAGS_READ_ONLY);
    }
    char too_long[FS_MAX_PATH_LENGTH + 2];
    memset(too_long, 'p', sizeof too_long - 1);
    too_long[sizeof too_long - 1] = '\0';
    fs_conn_start_stat(&c, &calls[8], 0, too_long);
    /* The refusal comes at the next dispatch, without the server (the fake server may have
     * answered some opens by then: their completions are delivered in the same dispatch). */
    fs_conn_dispatch(&c);
    bool refused_first = false;
    for (uint32_t k = 0; k < log.delivered && k < 9; k++)
        refused_first |= log.tickets[k] == calls[8].ticket && log.cmpls[k].status == FS_STATUS_INVALID_PATH;
    for (int spins = 0; log.delivered < 9 && spins < 500; spins++) {
        struct pollfd p = {.fd = f.server_to_client, .events = POLLIN};
        if (poll(&p, 1, 20) > 0) {
            uint64_t v;
            if (read(f.server_to_client, &v, sizeof v) < 0)
                break;
        }
        fs_conn_dispatch(&c);
    }
    uint32_t sent = f.received;
    bool matched = log.delivered == 9;
    for (uint32_t k = 0; k < 9 && matched; k++) {
        if (log.tickets[k] == calls[8].ticket)
            continue;
        int i = -1;
        for (int j = 0; j < 8; j++)
            if (calls[j].ticket == log.tickets[k])
                i = j;
        fs_reply r;
        matched = i >= 0;
        if (matched) {
            fs_conn_finish(&c, &calls[i], &log.cmpls[k], &r);
            /* each path has its own length, which the fake server's FILE_OPEN answers with */
            matched = r.status == FS_STATUS_SUCCESS && r.data == 40 + strlen(paths[i]);
        }
    }
    /* Nothing waits for share space: a full region says so at once. */
    void *all = fs_conn_try_alloc(&c, SHARE_BYTES);
    void *more = fs_conn_try_alloc(&c, 1);
    fs_conn_free(&c, all);
    void *again = fs_conn_try_alloc(&c, 1);
    fs_conn_free(&c, again);
    uint32_t pending = c.pending;
    fake_stop(&f, &c);
    CHECK(refused_first);
    CHECK_MSG(matched, "%u delivered", log.delivered);
    CHECK_EQ(sent, 8);
    CHECK(log.notified >= 1);
    CHECK(all != NULL && more == NULL && again != NULL);
    CHECK_EQ(pending, 0);
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

/* ---- what a mount report says to a user ---- */

TEST(mount_reports_are_described_in_one_line_and_advise_a_check_when_needed)
{
    char text[1024];
    fs_mount_report clean = {0};
    CHECK(!fs_mount_report_describe(&clean, "v.img", text, sizeof text));
    CHECK_EQ(text[0], '\0');

    fs_mount_report repaired = {.flags = FS_MOUNT_WAS_DIRTY | FS_MOUNT_RECOVERED,
                                .renames_completed = 1,
                                .lost_freed = 12,
                                .fat_blocks_copied = 3};
    CHECK(fs_mount_report_describe(&repaired, "v.img", text, sizeof text));
    CHECK_MSG(strcmp(text, "v.img was not cleanly unmounted; recovered: 1 interrupted rename completed, 12 lost "
                           "clusters freed, 3 FAT copy blocks made equal to the first FAT") == 0,
              "%s", text);

    fs_mount_report nothing = {.flags = FS_MOUNT_WAS_DIRTY | FS_MOUNT_RECOVERED};
    CHECK(fs_mount_report_describe(&nothing, "v.img", text, sizeof text));
    CHECK_MSG(strcmp(text, "v.img was not cleanly unmounted; recovered: nothing needed repair") == 0, "%s", text);

    fs_mount_report read_only = {.flags = FS_MOUNT_WAS_DIRTY};
    CHECK(fs_mount_report_describe(&read_only, "v.img", text, sizeof text));
    CHECK_MSG(strstr(text, "not recovered (mounted read-only)") != NULL, "%s", text);

    fs_mount_report damaged = {.flags = FS_MOUNT_WAS_DIRTY | FS_MOUNT_RECOVERED | FS_MOUNT_NEEDS_CHECK,
                               .orphans_removed = 2};
    CHECK(fs_mount_report_describe(&damaged, "v.img", text, sizeof text));
    CHECK_MSG(strstr(text, "recovered: 2 orphaned long-name entries removed\nv.img has damage a power cut does not "
                           "cause, left as it was: run `asyncfat check v.img`") != NULL,
              "%s", text);

    fs_mount_report differ = {.fat_disagreements = 5};
    CHECK(fs_mount_report_describe(&differ, "v.img", text, sizeof text));
    CHECK_MSG(strcmp(text, "v.img: 5 clusters the FAT copies disagreed on") == 0, "%s", text);

    char tiny[8];
    CHECK(fs_mount_report_describe(&damaged, "a-long-image-name.img", tiny, sizeof tiny));
    CHECK(strlen(tiny) < sizeof tiny);
}
