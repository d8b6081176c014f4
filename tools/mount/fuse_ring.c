/* FUSE over io_uring (see mount.h): the ring's set-up at INIT, the requests it brings and
 * the replies it takes, a submission per loop turn for all of them.
 *
 * The kernel's protocol (Linux 6.14+, include/uapi/linux/fuse.h, 7.42): the server
 * registers, per queue (one per possible CPU), entries of two buffers: a header block (the
 * fuse_in_header or fuse_out_header, the operation's fixed argument, and the entry's own
 * in/out record) and a payload of max(8 KiB, max_write, max_pages pages). A REGISTER or
 * COMMIT_AND_FETCH command (IORING_OP_URING_CMD on /dev/fuse, in a 128-byte SQE)
 * completes when a request has been put in its entry; COMMIT_AND_FETCH first hands the
 * kernel the reply written into the same buffers. The queue is chosen by the CPU the
 * requesting thread runs on, so every queue needs entries before the kernel switches over.
 *
 * The mount takes the switch only when INIT offers it: its INIT reply (libfuse's) gets the
 * FUSE_OVER_IO_URING flag here, after the ring and the entries exist, so a kernel that
 * offered it never waits for entries that cannot come. Should a REGISTER fail, the kernel
 * goes back to /dev/fuse by itself. */
#include "tools/mount/mount.h"

#include "platform/linux/runtime.h"

#include <errno.h>
#include <linux/fuse.h>
#include <liburing.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <unistd.h>

/* ---- the kernel's layouts (not yet in this system's linux/fuse.h) ---- */
#define RING_OFFER (1ULL << 41) /* FUSE_OVER_IO_URING, in INIT's 64-bit flags */
#define RING_IN_OUT_SIZE 128
#define RING_OP_SIZE 128
enum { RING_CMD_REGISTER = 1, RING_CMD_COMMIT_AND_FETCH = 2 };

typedef struct ring_ent_in_out {
    uint64_t flags;
    uint64_t commit_id;  /* the request's unique id */
    uint32_t payload_sz; /* bytes in the payload, either way */
    uint32_t padding;
    uint64_t reserved;
} ring_ent_in_out;

typedef struct ring_header {
    uint8_t in_out[RING_IN_OUT_SIZE]; /* fuse_in_header in, fuse_out_header out */
    uint8_t op_in[RING_OP_SIZE];      /* the operation's first argument */
    ring_ent_in_out ent;
} ring_header;

typedef struct ring_cmd {
    uint64_t flags;
    uint64_t commit_id;
    uint16_t qid;
    uint8_t padding[6];
} ring_cmd;

_Static_assert(sizeof(ring_ent_in_out) == 32, "fuse_uring_ent_in_out");
_Static_assert(sizeof(ring_header) == 288, "fuse_uring_req_header");
_Static_assert(sizeof(ring_cmd) == 24, "fuse_uring_cmd_req");
_Static_assert(offsetof(struct fuse_init_out, flags2) == 32, "fuse_init_out");
_Static_assert(offsetof(struct fuse_init_in, flags2) == 16, "fuse_init_in");

/* Entries per queue: 16, fewer where there are many CPUs (128 in all, but one per queue
 * at least), each with a payload of 1 MiB (libfuse's max_write). */
#define RING_DEPTH 16u
#define RING_ENTRIES_MAX 128u
#define RING_MAX_QUEUES 1024u
#define RING_PAYLOAD_EXPECTED (1u << 20)
#define RING_HOT 4u /* entries per queue whose payload stays populated */

/* An entry's memory is one piece: a page holding the header block, then the payload. A
 * request is handed to libfuse as if read from /dev/fuse (in header, first argument,
 * payload, back to back) by copying its two headers into the end of that first page,
 * against the payload. The pieces are kept in the share region when it has room
 * (mount_share_keep): then a write's data goes to the server from where the kernel put it,
 * and a read's comes from the server straight into the payload the kernel takes it from
 * (fuse_ring_request_data, fuse_ring_reply_space). */
typedef struct ring_entry {
    uint8_t *area;
    ring_header *header;
    uint8_t *payload;
    struct iovec iov[2];
    uint64_t commit_id;
    uint16_t qid;
    bool in_share;
    enum { ENTRY_KERNEL, ENTRY_SERVING, ENTRY_GONE } state;
} ring_entry;

static struct {
    struct fuse_session *session;
    int fuse_fd;
    bool awaiting_init;        /* -o io_uring allows the ring, and INIT has not come yet */
    bool offered;              /* INIT offered it; until INIT's reply */
    uint64_t init_unique;
    struct io_uring ring;
    bool up;                   /* the ring and its entries exist */
    ring_entry *entries;
    unsigned count;
    ring_entry *current;       /* the request libfuse is being given */
    size_t page, payload_size, area_size;
    unsigned unsubmitted;
    uint64_t served;
} R = {.fuse_fd = -1};

static unsigned depth_for(unsigned queues)
{
    unsigned depth = RING_ENTRIES_MAX / queues;
    return depth > RING_DEPTH ? RING_DEPTH : depth ? depth : 1;
}

/* Possible CPUs, from /sys/devices/system/cpu/possible ("0-3", "0,2-5"): the kernel makes
 * a queue for each. */
static unsigned possible_cpus(void)
{
    FILE *f = fopen("/sys/devices/system/cpu/possible", "r");
    if (!f)
        return 0;
    char line[256];
    unsigned highest = 0;
    bool any = false;
    if (fgets(line, sizeof line, f)) {
        for (char *p = line; *p && *p != '\n';) {
            char *end;
            unsigned long n = strtoul(p, &end, 10);
            if (end == p)
                break;
            any = true;
            if (n > highest)
                highest = (unsigned)n;
            p = *end ? end + 1 : end;
        }
    }
    fclose(f);
    return any && highest < RING_MAX_QUEUES ? highest + 1 : 0;
}

void fuse_ring_flush(void)
{
    if (!R.up || R.unsubmitted == 0)
        return;
    int n = io_uring_submit(&R.ring);
    if (n >= 0)
        R.unsubmitted = 0;
}

static void queue_command(ring_entry *e, unsigned op)
{
    struct io_uring_sqe *sqe = io_uring_get_sqe(&R.ring);
    if (!sqe) {
        fuse_ring_flush();
        sqe = io_uring_get_sqe(&R.ring);
    }
    if (!sqe) { /* the submission queue holds every entry once: cannot happen */
        e->state = ENTRY_GONE;
        return;
    }
    memset(sqe, 0, 2 * sizeof *sqe);
    sqe->opcode = IORING_OP_URING_CMD;
    sqe->fd = R.fuse_fd;
    sqe->cmd_op = op;
    sqe->addr = (uint64_t)(uintptr_t)e->iov;
    sqe->len = 2;
    ring_cmd cmd = {.commit_id = op == RING_CMD_COMMIT_AND_FETCH ? e->commit_id : 0, .qid = e->qid};
    memcpy(sqe->cmd, &cmd, sizeof cmd);
    io_uring_sqe_set_data64(sqe, (uint64_t)(e - R.entries));
    e->state = ENTRY_KERNEL;
    R.unsubmitted++;
}

/* ---- set-up and tear-down ---- */

static void entries_free(void)
{
    for (unsigned i = 0; i < R.count; i++)
        if (R.entries[i].area && !R.entries[i].in_share)
            munmap(R.entries[i].area, R.area_size);
    free(R.entries);
    R.entries = NULL;
    R.count = 0;
}

void fuse_ring_close(void)
{
    if (R.up)
        io_uring_queue_exit(&R.ring);
    R.up = false;
    entries_free();
    R.unsubmitted = 0;
}

static bool ring_has_completions(void *ctx)
{
    AF_UNUSED(ctx);
    return R.up && io_uring_cq_ready(&R.ring) > 0;
}

/* The ring and its entries, sized by what INIT's reply tells the kernel. */
static bool ring_create(const struct fuse_init_out *out)
{
    unsigned queues = possible_cpus();
    if (queues == 0)
        return false;
    R.page = (size_t)sysconf(_SC_PAGESIZE);
    size_t pages = out->flags & FUSE_MAX_PAGES ? out->max_pages : 32u; /* the kernel's default */
    size_t payload = (size_t)out->max_write > pages * R.page ? out->max_write : pages * R.page;
    if (payload < 8192)
        payload = 8192;
    R.payload_size = (payload + R.page - 1) / R.page * R.page;
    R.area_size = R.page + R.payload_size;
    unsigned depth = depth_for(queues);
    R.count = queues * depth;
    R.entries = calloc(R.count, sizeof *R.entries);
    if (!R.entries)
        goto fail;
    for (unsigned i = 0; i < R.count; i++) {
        ring_entry *e = &R.entries[i];
        void *area = mount_share_keep(R.area_size);
        e->in_share = area != NULL;
        /* The share region was populated at start, 16 MiB per CPU for the ring, most of it
         * idle: the kernel hands a queue's entries out last registered first and takes
         * them back to the front, so the last few of each queue carry nearly everything.
         * The others give their pages back, to be faulted in if a burst ever reaches them. */
        if (area && i % depth + RING_HOT < depth)
            madvise((uint8_t *)area + R.page, R.payload_size, MADV_DONTNEED);
        if (!area)
            area = mmap(NULL, R.area_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (area == MAP_FAILED)
            goto fail;
        e->area = area;
        e->header = area;
        e->payload = e->area + R.page;
        e->iov[0] = (struct iovec){e->header, sizeof *e->header};
        e->iov[1] = (struct iovec){e->payload, R.payload_size};
        e->qid = (uint16_t)(i / depth);
        e->state = ENTRY_GONE;
    }
    struct io_uring_params p = {.flags = IORING_SETUP_SQE128 | IORING_SETUP_COOP_TASKRUN | IORING_SETUP_SINGLE_ISSUER};
    if (io_uring_queue_init_params(R.count, &R.ring, &p) != 0)
        goto fail;
    R.up = true;
    if (lx_runtime_watch_fd_probed(R.ring.ring_fd, fuse_ring_ready, ring_has_completions, NULL) != 0) {
        fuse_ring_close();
        return false;
    }
    return true;
fail:
    entries_free();
    return false;
}

/* libfuse's INIT reply: offer the ring back, set it up, and register its entries once the
 * kernel has the reply (it refuses them before). */
static ssize_t init_reply(int fd, struct iovec *iov, int count)
{
    const struct fuse_out_header *oh = iov[0].iov_base;
    struct fuse_init_out *out = count >= 2 && iov[1].iov_len >= offsetof(struct fuse_init_out, flags2) + 4
                                    ? iov[1].iov_base
                                    : NULL;
    bool ring = oh->error == 0 && out && ring_create(out);
    if (ring) {
        out->flags |= FUSE_INIT_EXT;
        out->flags2 |= (uint32_t)(RING_OFFER >> 32);
    }
    ssize_t n = writev(fd, iov, count);
    if (ring && n < 0)
        fuse_ring_close();
    if (ring && n >= 0) {
        for (unsigned i = 0; i < R.count; i++)
            queue_command(&R.entries[i], RING_CMD_REGISTER);
        fuse_ring_flush();
    }
    return n;
}

/* ---- requests and replies ---- */

static ring_entry *serving(uint64_t unique)
{
    for (unsigned i = 0; i < R.count; i++)
        if (R.entries[i].state == ENTRY_SERVING && R.entries[i].commit_id == unique)
            return &R.entries[i];
    return NULL;
}

/* The reply goes into the entry's buffers; the commit (and the fetch of the entry's next
 * request) goes with the loop turn's submission. */
static ssize_t ring_reply(ring_entry *e, const struct iovec *iov, int count)
{
    struct fuse_out_header oh;
    memcpy(&oh, iov[0].iov_base, sizeof oh);
    size_t total = 0;
    for (int i = 1; i < count; i++)
        total += iov[i].iov_len;
    size_t sent = sizeof oh + total;
    if (total > R.payload_size) { /* larger than the kernel allows: it would refuse it */
        oh.error = -EIO;
        total = 0;
    }
    size_t at = 0;
    for (int i = 1; i < count && total; i++) {
        if (iov[i].iov_base != e->payload + at) /* a read's data is there already */
            memcpy(e->payload + at, iov[i].iov_base, iov[i].iov_len);
        at += iov[i].iov_len;
    }
    memcpy(e->header->in_out, &oh, sizeof oh);
    e->header->ent.payload_sz = (uint32_t)total;
    queue_command(e, RING_CMD_COMMIT_AND_FETCH);
    return (ssize_t)sent;
}

static ssize_t fuse_writev(int fd, struct iovec *iov, int count, void *userdata)
{
    AF_UNUSED(userdata);
    const struct fuse_out_header *oh = iov[0].iov_base;
    if (R.up && oh->unique != 0) {
        ring_entry *e = serving(oh->unique);
        if (e)
            return ring_reply(e, iov, count);
    }
    if (R.offered && oh->unique == R.init_unique) {
        R.offered = false;
        return init_reply(fd, iov, count);
    }
    return writev(fd, iov, count);
}

static ssize_t fuse_read(int fd, void *buf, size_t size, void *userdata)
{
    AF_UNUSED(userdata);
    return read(fd, buf, size);
}

/* A request in an entry, to libfuse as if read from /dev/fuse. One the kernel could not
 * have sent (its lengths disagree) is answered EIO. */
static void serve(ring_entry *e)
{
    struct fuse_in_header in;
    memcpy(&in, e->header->in_out, sizeof in);
    uint32_t payload = e->header->ent.payload_sz;
    e->commit_id = e->header->ent.commit_id;
    e->state = ENTRY_SERVING;
    size_t op = in.len - sizeof in - payload;
    if (in.len < sizeof in + payload || op > RING_OP_SIZE || payload > R.payload_size || in.unique != e->commit_id) {
        struct fuse_out_header oh = {.len = sizeof oh, .error = -EIO, .unique = e->commit_id};
        struct iovec iov = {&oh, sizeof oh};
        ring_reply(e, &iov, 1);
        return;
    }
    uint8_t *start = e->payload - sizeof in - op;
    memcpy(start, &in, sizeof in);
    memcpy(start + sizeof in, e->header->op_in, op);
    R.served++;
    struct fuse_buf buf = {.mem = start, .size = in.len};
    R.current = e;
    fuse_session_process_buf(R.session, &buf);
    R.current = NULL;
}

bool fuse_ring_request_data(const void *data, size_t size)
{
    const ring_entry *e = R.current;
    const uint8_t *p = data;
    return e && e->in_share && p >= e->payload && size <= R.payload_size &&
           (size_t)(p - e->payload) <= R.payload_size - size;
}

uint8_t *fuse_ring_reply_space(size_t size)
{
    ring_entry *e = R.current;
    return e && e->in_share && size <= R.payload_size ? e->payload : NULL;
}

/* Serve what the ring brought, then send the replies. Sending them runs the kernel's work
 * for this thread, which may bring more: take those at once, without going back to the
 * loop, a few rounds at most so that the loop's other descriptors are not starved. */
#define RING_ROUNDS 4

void fuse_ring_ready(void *ctx)
{
    AF_UNUSED(ctx);
    for (int round = 0; round < RING_ROUNDS && R.up && io_uring_cq_ready(&R.ring); round++) {
        struct io_uring_cqe *cqe;
        unsigned head, seen = 0;
        io_uring_for_each_cqe(&R.ring, head, cqe)
        {
            seen++;
            if (cqe->user_data >= R.count)
                continue;
            ring_entry *e = &R.entries[cqe->user_data];
            if (cqe->res == 0)
                serve(e);
            else
                e->state = ENTRY_GONE; /* the connection is ending, or the entry was refused */
        }
        io_uring_cq_advance(&R.ring, seen);
        mount_settle();
    }
}

/* ---- libfuse's side ---- */

int fuse_ring_attach(struct fuse_session *session, bool wanted)
{
    static const struct fuse_custom_io io = {.writev = fuse_writev, .read = fuse_read};
    R.session = session;
    R.fuse_fd = fuse_session_fd(session);
    R.awaiting_init = wanted;
    return wanted ? fuse_session_custom_io(session, &io, R.fuse_fd) : 0;
}

void fuse_ring_saw_request(const void *mem, size_t size)
{
    struct fuse_in_header in;
    struct fuse_init_in init;
    if (!R.awaiting_init || size < sizeof in + offsetof(struct fuse_init_in, flags2) + 4)
        return;
    memcpy(&in, mem, sizeof in);
    if (in.opcode != FUSE_INIT)
        return;
    R.awaiting_init = false;
    memset(&init, 0, sizeof init);
    memcpy(&init, (const uint8_t *)mem + sizeof in, size - sizeof in < sizeof init ? size - sizeof in : sizeof init);
    uint64_t flags = init.flags;
    if (flags & FUSE_INIT_EXT)
        flags |= (uint64_t)init.flags2 << 32;
    R.offered = (flags & RING_OFFER) != 0;
    R.init_unique = in.unique;
}

uint64_t fuse_ring_requests(void) { return R.served; }

size_t fuse_ring_share_bytes(bool wanted)
{
    if (getenv("ASYNCFAT_RING_UNSHARED"))
        return 0;
    FILE *f = wanted ? fopen("/sys/module/fuse/parameters/enable_uring", "r") : NULL;
    int on = f ? fgetc(f) : 0;
    if (f)
        fclose(f);
    unsigned queues = on == 'Y' ? possible_cpus() : 0;
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    return queues ? (size_t)queues * depth_for(queues) * (page + RING_PAYLOAD_EXPECTED) : 0;
}
