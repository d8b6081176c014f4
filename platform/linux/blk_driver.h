/* The Linux block driver: serves sDDF block queues (protocol/blk_queue.h) from a disk image
 * file or a block device with io_uring.
 *
 * The core is a plain object driven by its owner, so it runs both as a component process
 * (blk_driver_component.c) and inside a test or benchmark: blk_driver_poll takes requests,
 * starts their I/O, collects finished I/O and publishes responses, never blocking (with the
 * device model on it may spin up to 30 us for a deadline that close); call it after the
 * client notifies and whenever blk_driver_event_fd is readable (or after
 * blk_driver_wait). Notify the client once per poll that published something.
 *
 * Requests: READ / WRITE of `count` 4096-byte blocks at block_number, from or into the data
 * region at io_or_offset, as one I/O each; FLUSH waits for every earlier request, then
 * fdatasync; BARRIER completes once every earlier request has, and later ones start only
 * then. Up to queue_depth requests are in flight, and no more than the response queue has
 * room for. Every request is validated first: count 0 (READ/WRITE), blocks beyond the
 * capacity, a buffer not wholly inside the data region, an unknown code, or a WRITE to a
 * read-only device get ERR_INVALID_PARAM; nothing outside the data region is ever touched.
 *
 * Page-cache I/O is done inline: io_uring hands a buffered transfer it cannot do without
 * blocking to a kernel worker thread, one more thread switch per request, which costs more
 * than the copy when the data is in memory. So a READ or WRITE is first tried in the
 * driver's thread (preadv2/pwritev2 with RWF_NOWAIT, which fails rather than wait for a
 * device; plain pread/pwrite and fdatasync on a file in memory, tmpfs or ramfs) and goes to
 * io_uring only when that does not do all of it. An inline request is answered no sooner
 * than a queued one would be: the device model's deadline, fault injection and the
 * FLUSH/BARRIER order apply unchanged; only its data moves early.
 * A large WRITE to a file in memory is the exception when the owner asks for it
 * (offload_write_bytes) and the process may use more than one CPU: there the copy costs
 * more than the thread switch, and on io_uring's worker (IOSQE_ASYNC) it runs beside the
 * driver's thread, which goes on with the rest of the loop's work (a client filling the
 * next buffer, as `asyncfat cp` does) instead of copying.
 *
 * Off by default, for benchmarks and tests: a device model (each request completes no
 * sooner than `latency` after the modelled device starts it, the device serving at most
 * device_queue_depth at once, transfers sharing a bandwidth cap), and fault injection
 * (blk_driver_faults below; the write log format is in blk_log.h).
 */
#ifndef ASYNCFAT_PLATFORM_LINUX_BLK_DRIVER_H
#define ASYNCFAT_PLATFORM_LINUX_BLK_DRIVER_H

#include "protocol/blk_queue.h"

typedef struct blk_device_model {
    uint64_t latency_ns;            /* per request; 0: no model */
    uint32_t device_queue_depth;    /* requests served at once; 0: as many as in flight */
    uint64_t bandwidth_bytes_per_s; /* shared by all transfers; 0: unlimited */
} blk_device_model;

typedef struct blk_driver_faults {
    uint64_t fail_request;          /* the Nth request (1-based, valid ones) gets ERR_IO; 0: off */
    uint64_t fail_first_block;      /* READ/WRITE touching [first, first + count) get ERR_IO */
    uint64_t fail_block_count;      /* 0: off */
    uint64_t power_cut_after_writes; /* the power goes after this many WRITEs: later writes
                                        are answered OK but dropped; 0: off */
    bool lose_unflushed;            /* at the cut, each block written since the last flush
                                       keeps its old content with probability 1/2 */
    uint64_t seed;                  /* for lose_unflushed */
    const char *log_path;           /* record writes and flushes here (blk_log.h); NULL: off */
} blk_driver_faults;

typedef struct blk_driver_config {
    const char *path;               /* disk image or block device */
    uint16_t sector_size;           /* 512, 1024, 2048 or 4096; 0: the device's, or 512 */
    bool read_only;                 /* also forced when the image cannot be opened for writing */
    uint32_t queue_depth;           /* requests in flight; 0: 64 */
    uint64_t capacity;              /* in BLK_TRANSFER_SIZE units; 0: the whole image */
    bool ring_only;                 /* every transfer through io_uring, none inline (to compare) */
    uint32_t offload_write_bytes;   /* a WRITE of at least this many bytes to a file in memory
                                     * goes to an io_uring worker, not inline; 0: none */
    blk_device_model model;
    blk_driver_faults faults;
} blk_driver_config;

typedef struct blk_driver_stats {
    uint64_t requests, reads, writes, flushes, barriers;
    uint64_t invalid, io_errors, dropped_writes;
    uint64_t polls_with_responses;  /* = notifications a component sends */
    uint64_t inline_completions;    /* READ/WRITE/FLUSH done wholly in the driver's thread */
    uint64_t mapped_reads;          /* of those, READs copied from a mapping of the image */
    uint64_t inline_fallbacks;      /* inline attempts that left (some of) the work to io_uring */
    uint64_t offloaded_writes;      /* WRITEs handed to an io_uring worker (offload_write_bytes) */
} blk_driver_stats;

typedef struct blk_driver blk_driver;

/* Open the device and fill *info (ready last). One writer per image (image_lock.h): an
 * image another open uses for writing, or that this one would write while others use it,
 * is EBUSY. queues and data stay the caller's; the
 * driver consumes queues.req and produces queues.resp. Returns NULL and an errno value in
 * *error on failure (EINVAL for a bad configuration).
 * An image in memory (tmpfs, ramfs) is also mapped, to copy reads from: the process then
 * has a SIGBUS handler, which turns a fault of the driver's copy into an I/O error and
 * passes any other SIGBUS to the handler installed before it. A program that installs
 * its own SIGBUS handler after opening should pass on what it does not handle. */
blk_driver *blk_driver_open(const blk_driver_config *config, blk_storage_info *info, blk_queue_handle queues,
                            void *data, size_t data_size, int *error);
void blk_driver_close(blk_driver *driver);

/* Make progress without blocking; returns the number of responses published. */
uint32_t blk_driver_poll(blk_driver *driver);

/* Readable when blk_driver_poll has finished I/O or due completions to publish. */
int blk_driver_event_fd(const blk_driver *driver);

/* Block until there is something for blk_driver_poll, or timeout_ns passes (<0: no limit). */
void blk_driver_wait(blk_driver *driver, int64_t timeout_ns);

/* Requests taken from the queue and not yet answered. */
uint32_t blk_driver_in_flight(const blk_driver *driver);

blk_driver_stats blk_driver_get_stats(const blk_driver *driver);

/* The size in bytes and the logical sector size of an open disk image (a regular file: its
 * length, and 512) or block device (BLKGETSIZE64, BLKSSZGET). Returns 0, or an errno
 * value (EINVAL: neither a regular file nor a block device). */
int blk_device_geometry(int fd, uint64_t *bytes, uint16_t *sector_size);
/* The same by path (opened read-only for the question). */
int blk_device_geometry_path(const char *path, uint64_t *bytes, uint16_t *sector_size);

#endif
