/* The block driver core: request intake and validation, ordering (barriers and flushes),
 * inline transfers, io_uring submission and completion, and response publication. The
 * device model and the fault injection live in blk_device_model.c and blk_driver_faults.c. */
#include "platform/linux/blk_driver_internal.h"
#include "platform/linux/image_lock.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <linux/magic.h>
#include <poll.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/vfs.h>
#include <time.h>
#include <unistd.h>

#define TIMER_TAG (1ull << 63)
#define DEFAULT_QUEUE_DEPTH 64u
#define MAX_QUEUE_DEPTH 4096u
#define SPIN_NS 30000u
/* Larger reads of an image in memory take one system call rather than the mapping: the
 * call's cost is small beside the copy, and the mapping pays off only where reads come
 * back (blk_driver_mapped.c). */
#define MAPPED_READ_MAX_BYTES (64u * 1024u)

uint64_t blk_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* ---- validation ------------------------------------------------------------------------ */

static uint32_t validate(const blk_driver *d, const blk_request *req)
{
    switch (req->code) {
    case BLK_REQ_READ:
    case BLK_REQ_WRITE: {
        if (req->count == 0 || req->block_number > d->capacity || req->count > d->capacity - req->block_number)
            return BLK_RESP_ERR_INVALID_PARAM;
        uint64_t bytes = (uint64_t)req->count * BLK_TRANSFER_SIZE;
        if (req->io_or_offset > d->data_size || bytes > d->data_size - req->io_or_offset)
            return BLK_RESP_ERR_INVALID_PARAM;
        if (req->code == BLK_REQ_WRITE && d->read_only)
            return BLK_RESP_ERR_INVALID_PARAM;
        return BLK_RESP_OK;
    }
    case BLK_REQ_FLUSH:
    case BLK_REQ_BARRIER:
        return BLK_RESP_OK;
    case BLK_REQ_DISCARD:
        if (req->count == 0 || req->block_number > d->capacity || req->count > d->capacity - req->block_number ||
            d->read_only)
            return BLK_RESP_ERR_INVALID_PARAM;
        return BLK_RESP_OK;
    default:
        return BLK_RESP_ERR_INVALID_PARAM;
    }
}

/* ---- slots and responses ---------------------------------------------------------------- */

static void respond(blk_driver *d, uint32_t s, uint32_t status)
{
    blk_slot *slot = &d->slots[s];
    uint16_t success = 0;
    if (slot->req.code == BLK_REQ_READ || slot->req.code == BLK_REQ_WRITE)
        success = status == BLK_RESP_OK ? slot->req.count : (uint16_t)(slot->bytes_done / BLK_TRANSFER_SIZE);
    if (status == BLK_RESP_ERR_INVALID_PARAM)
        d->stats.invalid++;
    else if (status != BLK_RESP_OK)
        d->stats.io_errors++;
    d->ready[d->ready_count++] = (blk_response){.status = status, .success_count = success, .id = slot->req.id};
    slot->state = BLK_SLOT_FREE;
    d->free_slots[d->free_count++] = s;
}

/* An active request's work is over: answer now, or at its modelled deadline. */
static void finish(blk_driver *d, uint32_t s, uint32_t status, uint64_t now)
{
    blk_slot *slot = &d->slots[s];
    slot->status = status;
    if (slot->deadline_ns > now) {
        slot->state = BLK_SLOT_DONE;
        d->done_waiting++;
        return;
    }
    d->active--;
    respond(d, s, status);
}

static void release_due(blk_driver *d, uint64_t now)
{
    for (uint32_t s = 0; s < d->slot_count && d->done_waiting > 0; s++) {
        blk_slot *slot = &d->slots[s];
        if (slot->state == BLK_SLOT_DONE && slot->deadline_ns <= now) {
            d->done_waiting--;
            d->active--;
            respond(d, s, slot->status);
        }
    }
}

/* ---- io_uring ---------------------------------------------------------------------------- */

static struct io_uring_sqe *get_sqe(blk_driver *d)
{
    struct io_uring_sqe *sqe = io_uring_get_sqe(&d->ring);
    if (!sqe) {
        io_uring_submit(&d->ring);
        d->unsubmitted = 0;
        sqe = io_uring_get_sqe(&d->ring);
    }
    AF_ASSERT(sqe); /* the ring has room for every slot and a timer */
    d->unsubmitted++;
    d->in_ring++;
    return sqe;
}

/* A WRITE of len bytes to a file in memory that goes to io_uring's worker rather than
 * inline: the copy into the page cache then runs on another CPU while this thread goes on. */
static bool offloads(const blk_driver *d, uint64_t len)
{
    return d->offload_write_bytes > 0 && len >= d->offload_write_bytes;
}

/* Queue the rest of a READ/WRITE (all of it, or what a short transfer left). */
static void queue_transfer(blk_driver *d, uint32_t s)
{
    blk_slot *slot = &d->slots[s];
    uint64_t total = (uint64_t)slot->req.count * BLK_TRANSFER_SIZE;
    uint8_t *buf = d->data + slot->req.io_or_offset + slot->bytes_done;
    uint64_t offset = slot->req.block_number * BLK_TRANSFER_SIZE + slot->bytes_done;
    unsigned len = (unsigned)(total - slot->bytes_done);
    struct io_uring_sqe *sqe = get_sqe(d);
    if (slot->req.code == BLK_REQ_READ)
        io_uring_prep_read(sqe, d->fd, buf, len, offset);
    else
        io_uring_prep_write(sqe, d->fd, buf, len, offset);
    /* without IOSQE_ASYNC io_uring would try the write in this thread first, and succeed */
    if (slot->req.code == BLK_REQ_WRITE && offloads(d, len)) {
        sqe->flags |= IOSQE_ASYNC;
        d->stats.offloaded_writes += slot->bytes_done == 0;
    }
    io_uring_sqe_set_data64(sqe, s);
}

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ volatile("yield");
#endif
}

static uint64_t earliest_deadline(const blk_driver *d)
{
    uint64_t earliest = UINT64_MAX;
    for (uint32_t s = 0; s < d->slot_count && d->done_waiting > 0; s++)
        if (d->slots[s].state == BLK_SLOT_DONE && d->slots[s].deadline_ns < earliest)
            earliest = d->slots[s].deadline_ns;
    return earliest;
}

/* A wake-up comes a little late (tens of microseconds on a busy machine), so the timer is
 * set SPIN_NS early and poll spins the rest of the way to the deadline. */
static void arm_timer(blk_driver *d)
{
    uint64_t earliest = earliest_deadline(d);
    if (earliest == UINT64_MAX)
        return;
    uint64_t wake = earliest > SPIN_NS ? earliest - SPIN_NS : 1;
    if (d->timer_deadline_ns != 0 && d->timer_deadline_ns <= wake)
        return;
    d->timer_ts.tv_sec = (long long)(wake / 1000000000ull);
    d->timer_ts.tv_nsec = (long long)(wake % 1000000000ull);
    struct io_uring_sqe *sqe = get_sqe(d);
    io_uring_prep_timeout(sqe, &d->timer_ts, 0, IORING_TIMEOUT_ABS);
    io_uring_sqe_set_data64(sqe, TIMER_TAG | wake);
    d->timer_deadline_ns = wake;
}

/* Answer the requests whose deadline has come, spinning for the next one if it is near. */
static uint64_t release_due_spinning(blk_driver *d)
{
    uint64_t now = blk_now_ns();
    release_due(d, now);
    uint64_t next = earliest_deadline(d);
    if (next != UINT64_MAX && next - now <= SPIN_NS) {
        while ((now = blk_now_ns()) < next)
            cpu_relax();
        release_due(d, now);
    }
    return now;
}

/* A READ/WRITE's I/O is over, by io_uring or inline. */
static void transfer_ended(blk_driver *d, uint32_t s, bool ok, uint64_t now)
{
    blk_slot *slot = &d->slots[s];
    if (slot->req.code == BLK_REQ_WRITE) {
        d->active_writes--;
        if (ok)
            blk_faults_write_done(d, &slot->req);
    }
    finish(d, s, ok ? BLK_RESP_OK : BLK_RESP_ERR_IO, now);
}

static void on_completion(blk_driver *d, uint64_t tag, int res, uint64_t now)
{
    if (tag & TIMER_TAG) {
        if ((tag & ~TIMER_TAG) == d->timer_deadline_ns)
            d->timer_deadline_ns = 0;
        return;
    }
    uint32_t s = (uint32_t)tag;
    blk_slot *slot = &d->slots[s];
    if (slot->req.code == BLK_REQ_FLUSH) {
        finish(d, s, res < 0 ? BLK_RESP_ERR_IO : BLK_RESP_OK, now);
        return;
    }
    uint64_t total = (uint64_t)slot->req.count * BLK_TRANSFER_SIZE;
    if (res > 0)
        slot->bytes_done += (uint64_t)res;
    if (res > 0 && slot->bytes_done < total) {
        queue_transfer(d, s);
        return;
    }
    transfer_ended(d, s, res > 0, now);
}

static void reap(blk_driver *d)
{
    struct io_uring_cqe *cqe;
    unsigned head, seen = 0;
    uint64_t now = blk_now_ns();
    io_uring_for_each_cqe(&d->ring, head, cqe) {
        on_completion(d, io_uring_cqe_get_data64(cqe), cqe->res, now);
        seen++;
    }
    io_uring_cq_advance(&d->ring, seen);
    d->in_ring -= seen;
}

/* ---- inline transfers --------------------------------------------------------------------- */

static ssize_t system_inline_io(int fd, void *buf, size_t len, off_t offset, bool write, bool nowait)
{
    struct iovec iov = {.iov_base = buf, .iov_len = len};
    int flags = nowait ? RWF_NOWAIT : 0;
    ssize_t n = write ? pwritev2(fd, &iov, 1, offset, flags) : preadv2(fd, &iov, 1, offset, flags);
    return n < 0 ? -errno : n;
}

/* Try the rest of a READ/WRITE in this thread. True when all of it is done; otherwise what
 * was done is counted in bytes_done and io_uring does the rest (and reports any error
 * itself, so an inline failure needs no error path of its own). */
static bool transfer_inline(blk_driver *d, uint32_t s)
{
    blk_slot *slot = &d->slots[s];
    bool write = slot->req.code == BLK_REQ_WRITE;
    blk_inline_mode *mode = write ? &d->inline_write : &d->inline_read;
    if (*mode == BLK_INLINE_OFF)
        return false;
    /* A file that takes RWF_NOWAIT is one io_uring itself tries without blocking when it
     * submits, so no worker hop is saved; what inline saves is the ring round trip of a
     * lone request. With others to submit in the same pass, one io_uring_enter for all of
     * them is cheaper than a syscall each. */
    if (*mode == BLK_INLINE_NOWAIT && (d->unsubmitted > 0 || d->waiting_count > 0))
        return false;
    uint64_t total = (uint64_t)slot->req.count * BLK_TRANSFER_SIZE;
    size_t len = (size_t)(total - slot->bytes_done);
    if (write && offloads(d, len))
        return false;
    uint8_t *buf = d->data + slot->req.io_or_offset + slot->bytes_done;
    uint64_t offset = slot->req.block_number * BLK_TRANSFER_SIZE + slot->bytes_done;
    blk_mapped_result mapped = BLK_MAPPED_COLD;
    if (!write && d->map && len <= MAPPED_READ_MAX_BYTES)
        mapped = blk_mapped_read(d, buf, offset, len);
    /* the image has shrunk: the system call path reports what is missing */
    if (mapped == BLK_MAPPED_FAULT)
        blk_mapped_close(d);
    if (mapped == BLK_MAPPED_DONE)
        d->stats.mapped_reads++;
    ssize_t n = mapped == BLK_MAPPED_DONE ? (ssize_t)len
                                          : d->inline_io(d->fd, buf, len, (off_t)offset, write, *mode == BLK_INLINE_NOWAIT);
    if (n > 0)
        slot->bytes_done += af_min_u64((uint64_t)n, len);
    if (slot->bytes_done == total) {
        d->stats.inline_completions++;
        return true;
    }
    d->stats.inline_fallbacks++;
    /* no RWF_NOWAIT in this kernel, or not for this file system (ext4 buffered writes, say):
     * every later try would fail the same way */
    if (n == -EOPNOTSUPP || n == -ENOSYS || n == -EINVAL)
        *mode = BLK_INLINE_OFF;
    return false;
}

static void start_transfer(blk_driver *d, uint32_t s, uint64_t now)
{
    if (transfer_inline(d, s))
        transfer_ended(d, s, true, now);
    else
        queue_transfer(d, s);
}

/* A file whose pages live only in memory: a blocking call on it waits for no device. A block
 * device's node sits on devtmpfs, so only regular files count. */
static bool file_in_memory(int fd)
{
    struct stat st;
    struct statfs fs;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || fstatfs(fd, &fs) != 0)
        return false;
    return fs.f_type == TMPFS_MAGIC || fs.f_type == RAMFS_MAGIC;
}

static void init_inline(blk_driver *d, const blk_driver_config *c)
{
    d->inline_io = system_inline_io;
    if (c->ring_only)
        return;
    bool memory = file_in_memory(d->fd);
    d->inline_read = d->inline_write = memory ? BLK_INLINE_MEMORY : BLK_INLINE_NOWAIT;
    d->inline_flush = memory;
    if (memory)
        blk_mapped_open(d);
    /* With one CPU the worker would only take turns with this thread. */
    cpu_set_t cpus;
    if (memory && sched_getaffinity(0, sizeof cpus, &cpus) == 0 && CPU_COUNT(&cpus) > 1)
        d->offload_write_bytes = c->offload_write_bytes;
}

void blk_driver_set_inline_io(blk_driver *d, blk_inline_mode read, blk_inline_mode write, blk_inline_io_fn io)
{
    d->inline_read = read;
    d->inline_write = write;
    d->inline_io = io ? io : system_inline_io;
    blk_mapped_close(d);
}

/* ---- intake and ordering ------------------------------------------------------------------ */

/* Returns how many requests it took. */
static uint32_t take_requests(blk_driver *d)
{
    /* every request taken must have room for its response, both in the response queue and
     * in our own list of responses not yet published */
    uint32_t occupied = d->slot_count - d->free_count;
    uint32_t room = blk_resp_queue_space(&d->queues);
    room = room > occupied + d->ready_count ? room - occupied - d->ready_count : 0;
    uint32_t slots = d->free_count > d->ready_count ? d->free_count - d->ready_count : 0;
    uint32_t n = af_min_u32(room, slots);
    if (n == 0)
        return 0;
    blk_request reqs[64];
    n = blk_dequeue_requests(&d->queues, reqs, af_min_u32(n, AF_ARRAY_LEN(reqs)));
    for (uint32_t i = 0; i < n; i++) {
        uint32_t s = d->free_slots[--d->free_count];
        blk_slot *slot = &d->slots[s];
        memset(slot, 0, sizeof *slot);
        slot->req = reqs[i];
        d->stats.requests++;
        uint32_t status = validate(d, &reqs[i]);
        if (status == BLK_RESP_OK)
            status = blk_faults_check(d, &reqs[i]);
        if (status != BLK_RESP_OK) {
            respond(d, s, status);
            continue;
        }
        slot->state = BLK_SLOT_WAITING;
        d->waiting[(d->waiting_head + d->waiting_count++) % d->slot_count] = s;
    }
    return n;
}

/* DISCARD (an asyncfat extension of the protocol, blk_queue.h), done at once in the
 * driver's thread: a hole punched in an image file, BLKDISCARD on a block device. Writes
 * to those blocks still in flight carry only what the client no longer needs, so their
 * order against it does not matter. */
static uint32_t discard_blocks(blk_driver *d, const blk_request *req)
{
    uint64_t range[2] = { req->block_number * BLK_TRANSFER_SIZE, (uint64_t)req->count * BLK_TRANSFER_SIZE };
    struct stat st;
    if (fstat(d->fd, &st) != 0)
        return BLK_RESP_ERR_IO;
    int r = S_ISBLK(st.st_mode) ? ioctl(d->fd, BLKDISCARD, range)
                                : fallocate(d->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)range[0],
                                            (off_t)range[1]);
    return r == 0 ? BLK_RESP_OK : BLK_RESP_ERR_UNSPEC;
}

/* Start waiting requests in arrival order; a FLUSH or BARRIER waits for all before it. */
static void start_waiting(blk_driver *d, uint64_t now)
{
    while (d->waiting_count > 0) {
        uint32_t s = d->waiting[d->waiting_head];
        blk_slot *slot = &d->slots[s];
        uint32_t code = slot->req.code;
        if ((code == BLK_REQ_FLUSH || code == BLK_REQ_BARRIER) && d->active > 0)
            return;
        d->waiting_head = (d->waiting_head + 1) % d->slot_count;
        d->waiting_count--;
        d->active++;
        slot->state = BLK_SLOT_ACTIVE;
        if (code == BLK_REQ_BARRIER) {
            d->stats.barriers++;
            finish(d, s, BLK_RESP_OK, now);
            continue;
        }
        if (code == BLK_REQ_DISCARD) {
            finish(d, s, discard_blocks(d, &slot->req), now);
            continue;
        }
        slot->deadline_ns = blk_model_deadline(d, &slot->req, now);
        if (code == BLK_REQ_FLUSH) {
            d->stats.flushes++;
            blk_faults_flush_starts(d);
            if (d->inline_flush) {
                /* A file in memory has no device behind its pages: there is nothing to
                 * make durable (the fault model has taken the flush into account). */
                d->stats.inline_completions++;
                finish(d, s, BLK_RESP_OK, now);
                continue;
            }
            struct io_uring_sqe *sqe = get_sqe(d);
            io_uring_prep_fsync(sqe, d->fd, IORING_FSYNC_DATASYNC);
            io_uring_sqe_set_data64(sqe, s);
            continue;
        }
        if (code == BLK_REQ_WRITE) {
            d->stats.writes++;
            if (!blk_faults_write_starts(d, &slot->req)) {
                d->stats.dropped_writes++;
                finish(d, s, BLK_RESP_OK, now);
                continue;
            }
            d->active_writes++;
        } else {
            d->stats.reads++;
        }
        start_transfer(d, s, now);
    }
}

/* Intake leaves room for every response, unless the client has scribbled on the response
 * queue's counters: then what does not fit waits for a later poll. */
static uint32_t publish(blk_driver *d)
{
    if (d->ready_count == 0)
        return 0;
    uint32_t put = blk_enqueue_responses(&d->queues, d->ready, d->ready_count);
    d->ready_count -= put;
    memmove(d->ready, d->ready + put, d->ready_count * sizeof *d->ready);
    return put;
}

uint32_t blk_driver_poll(blk_driver *d)
{
    /* Only a completion makes event_fd readable. Once it has been read with nothing left in
     * the ring it stays clear, and a poll (one per client notification) saves the read:
     * with every transfer done inline (a file in memory) that is every poll. */
    if (d->event_unread || d->in_ring > 0) {
        uint64_t counter;
        if (read(d->event_fd, &counter, sizeof counter) < 0 && errno != EAGAIN)
            counter = 0;
        d->event_unread = d->in_ring > 0;
    }
    reap(d);
    if (d->active_writes == 0)
        blk_faults_settle(d);
    uint64_t now = release_due_spinning(d);
    uint32_t published = 0;
    /* requests answered at once (bad ones, barriers, dropped writes) free their slots for
     * more, which must be taken now: no event would bring us back for them */
    uint32_t taken;
    do {
        taken = take_requests(d);
        start_waiting(d, now);
        published += publish(d);
    } while (taken > 0);
    arm_timer(d);
    if (d->unsubmitted) {
        io_uring_submit(&d->ring);
        d->unsubmitted = 0;
    }
    if (published)
        d->stats.polls_with_responses++;
    return published;
}

int blk_driver_event_fd(const blk_driver *d) { return d->event_fd; }

void blk_driver_wait(blk_driver *d, int64_t timeout_ns)
{
    if (io_uring_cq_ready(&d->ring) > 0)
        return;
    struct pollfd p = {.fd = d->event_fd, .events = POLLIN};
    struct timespec ts = {.tv_sec = timeout_ns / 1000000000, .tv_nsec = timeout_ns % 1000000000};
    ppoll(&p, 1, timeout_ns < 0 ? NULL : &ts, NULL);
}

uint32_t blk_driver_in_flight(const blk_driver *d) { return d->slot_count - d->free_count; }

blk_driver_stats blk_driver_get_stats(const blk_driver *d) { return d->stats; }

/* ---- open and close ----------------------------------------------------------------------- */

/* One writer per image (image_lock.h): a block device opened for writing is claimed with
 * O_EXCL, and every image gets an OFD lock, exclusive for writing, shared for reading. */
static int open_device(blk_driver *d, const blk_driver_config *c, uint64_t *bytes, uint16_t *sector)
{
    d->read_only = c->read_only;
    struct stat named;
    int excl = !d->read_only && stat(c->path, &named) == 0 && S_ISBLK(named.st_mode) ? O_EXCL : 0;
    d->fd = open(c->path, (d->read_only ? O_RDONLY : O_RDWR) | excl | O_CLOEXEC);
    if (d->fd < 0 && !d->read_only && (errno == EACCES || errno == EROFS || errno == EPERM)) {
        d->read_only = true;
        d->fd = open(c->path, O_RDONLY | O_CLOEXEC);
    }
    if (d->fd < 0)
        return errno;
    int locked = image_lock_take(d->fd, !d->read_only);
    if (locked)
        return locked;
    return blk_device_geometry(d->fd, bytes, sector);
}

int blk_device_geometry(int fd, uint64_t *bytes, uint16_t *sector_size)
{
    struct stat st;
    if (fstat(fd, &st) != 0)
        return errno;
    *sector_size = 512;
    if (S_ISBLK(st.st_mode)) {
        int logical = 0;
        if (ioctl(fd, BLKGETSIZE64, bytes) != 0)
            return errno;
        if (ioctl(fd, BLKSSZGET, &logical) == 0 && logical > 0)
            *sector_size = (uint16_t)logical;
    } else if (S_ISREG(st.st_mode)) {
        *bytes = (uint64_t)st.st_size;
    } else {
        return EINVAL;
    }
    return 0;
}

int blk_device_geometry_path(const char *path, uint64_t *bytes, uint16_t *sector_size)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno;
    int err = blk_device_geometry(fd, bytes, sector_size);
    close(fd);
    return err;
}

static int set_capacity(blk_driver *d, const blk_driver_config *c, uint64_t bytes)
{
    d->capacity = bytes / BLK_TRANSFER_SIZE;
    if (c->capacity == 0 || c->capacity == d->capacity)
        return d->capacity > 0 ? 0 : EINVAL;
    if (c->capacity < d->capacity) {
        d->capacity = c->capacity;
        return 0;
    }
    /* a bigger capacity than the image: grow the image (a sparse file) */
    if (d->read_only || c->capacity > (UINT64_MAX >> 13) ||
        ftruncate(d->fd, (off_t)(c->capacity * BLK_TRANSFER_SIZE)) != 0)
        return EINVAL;
    d->capacity = c->capacity;
    return 0;
}

static void fill_info(blk_driver *d, const blk_driver_config *c, uint16_t device_sector)
{
    blk_storage_info *info = d->info;
    memset(info, 0, sizeof *info);
    const char *base = strrchr(c->path, '/');
    snprintf(info->serial_number, sizeof info->serial_number, "asyncfat:%s", base ? base + 1 : c->path);
    info->read_only = d->read_only;
    info->sector_size = c->sector_size ? c->sector_size : device_sector;
    info->block_size = 1;
    info->queue_depth = (uint16_t)af_min_u32(d->slot_count, 0xffff);
    info->capacity = d->capacity;
    blk_storage_publish_ready(info);
}

static bool valid_config(const blk_driver_config *c, void *data)
{
    uint16_t s = c->sector_size;
    return c->path && data && (s == 0 || s == 512 || s == 1024 || s == 2048 || s == 4096) &&
           c->queue_depth <= MAX_QUEUE_DEPTH;
}

static int setup_ring(blk_driver *d, bool *ring_made)
{
    /* COOP_TASKRUN: a completion the kernel finishes in our task's context (a timer, a
     * worker's result) waits for our next system call instead of interrupting us with an
     * IPI; the driver makes one (the eventfd read) at the start of every poll, and a sleep
     * in epoll or ppoll is still woken. Kernels before 5.19 refuse the flag: do without. */
    unsigned entries = d->slot_count * 2 + 8;
    int err = -io_uring_queue_init(entries, &d->ring, IORING_SETUP_COOP_TASKRUN);
    if (err == EINVAL)
        err = -io_uring_queue_init(entries, &d->ring, 0);
    if (err)
        return err;
    *ring_made = true;
    d->event_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (d->event_fd < 0)
        return errno;
    return -io_uring_register_eventfd(&d->ring, d->event_fd);
}

blk_driver *blk_driver_open(const blk_driver_config *config, blk_storage_info *info, blk_queue_handle queues,
                            void *data, size_t data_size, int *error)
{
    *error = EINVAL;
    if (!valid_config(config, data))
        return NULL;
    blk_driver *d = calloc(1, sizeof *d);
    if (!d) {
        *error = ENOMEM;
        return NULL;
    }
    d->config = *config;
    d->info = info;
    d->queues = queues;
    d->data = data;
    d->data_size = data_size;
    d->fd = d->event_fd = -1;
    d->slot_count = config->queue_depth ? config->queue_depth : DEFAULT_QUEUE_DEPTH;
    d->slots = calloc(d->slot_count, sizeof *d->slots);
    d->free_slots = calloc(d->slot_count, sizeof *d->free_slots);
    d->waiting = calloc(d->slot_count, sizeof *d->waiting);
    d->ready = calloc(d->slot_count, sizeof *d->ready);
    uint64_t bytes = 0;
    uint16_t sector = 512;
    bool ring_made = false;
    int err = ENOMEM;
    if (d->slots && d->free_slots && d->waiting && d->ready) {
        err = open_device(d, config, &bytes, &sector);
        if (!err)
            err = set_capacity(d, config, bytes);
        if (!err)
            err = setup_ring(d, &ring_made);
        if (!err)
            init_inline(d, config);
        if (!err && (!blk_model_init(d) || !blk_faults_init(d)))
            err = errno ? errno : ENOMEM;
    }
    if (err) {
        if (ring_made)
            io_uring_queue_exit(&d->ring);
        blk_mapped_close(d);
        blk_model_free(d);
        blk_faults_free(d);
        if (d->event_fd >= 0)
            close(d->event_fd);
        if (d->fd >= 0)
            close(d->fd);
        free(d->slots);
        free(d->free_slots);
        free(d->waiting);
        free(d->ready);
        free(d);
        *error = err;
        return NULL;
    }
    for (uint32_t s = 0; s < d->slot_count; s++)
        d->free_slots[d->free_count++] = d->slot_count - 1 - s;
    fill_info(d, config, sector);
    *error = 0;
    return d;
}

void blk_driver_close(blk_driver *d)
{
    if (!d)
        return;
    /* let in-flight I/O finish: its buffers are the caller's */
    while (d->active > d->done_waiting) {
        io_uring_submit_and_wait(&d->ring, 1);
        reap(d);
    }
    io_uring_queue_exit(&d->ring);
    blk_mapped_close(d);
    if (d->active_writes == 0)
        blk_faults_settle(d);
    blk_model_free(d);
    blk_faults_free(d);
    close(d->event_fd);
    close(d->fd);
    free(d->slots);
    free(d->free_slots);
    free(d->waiting);
    free(d->ready);
    free(d);
}
