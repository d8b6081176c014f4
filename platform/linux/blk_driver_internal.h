/* Shared by the block driver's files: the driver object, the request slots, and the
 * device model and fault injection hooks the core calls. Not a public interface. */
#ifndef ASYNCFAT_PLATFORM_LINUX_BLK_DRIVER_INTERNAL_H
#define ASYNCFAT_PLATFORM_LINUX_BLK_DRIVER_INTERNAL_H

#include "platform/linux/blk_driver.h"

#include "platform/linux/blk_log.h"

#include <liburing.h>
#include <stdio.h>
#include <sys/types.h>

typedef enum blk_slot_state {
    BLK_SLOT_FREE,
    BLK_SLOT_WAITING,   /* taken from the queue, not started (behind a barrier or flush) */
    BLK_SLOT_ACTIVE,    /* I/O submitted */
    BLK_SLOT_DONE,      /* I/O finished; the response waits for the modelled deadline */
} blk_slot_state;

typedef struct blk_slot {
    blk_request req;
    blk_slot_state state;
    uint32_t status;        /* blk_response_status once finished */
    uint64_t bytes_done;    /* of a READ/WRITE, across short transfers */
    uint64_t deadline_ns;   /* modelled completion time; 0: none */
    bool dropped;           /* a WRITE after the power cut: answered, not performed */
} blk_slot;

/* How READs (or WRITEs) are tried in the driver's thread before io_uring gets them. */
typedef enum blk_inline_mode {
    BLK_INLINE_OFF,     /* io_uring only */
    BLK_INLINE_NOWAIT,  /* RWF_NOWAIT: done when the page cache serves it without waiting */
    BLK_INLINE_MEMORY,  /* plain calls: the file lives in memory, nothing waits for a device */
} blk_inline_mode;

/* One inline transfer of len bytes at offset: preadv2/pwritev2, with RWF_NOWAIT when nowait.
 * Returns the bytes moved or a negative errno value. Replaceable for tests. */
typedef ssize_t (*blk_inline_io_fn)(int fd, void *buf, size_t len, off_t offset, bool write, bool nowait);

/* Blocks written since the last flush and their content before it (lose_unflushed). */
typedef struct blk_preimage_set {
    uint64_t *blocks;       /* open addressing, UINT64_MAX = empty */
    uint32_t *index;        /* position of the block's old content in data */
    uint32_t table_size;    /* power of two */
    uint32_t count;
    uint8_t *data;          /* count * 4096 bytes */
    uint32_t data_capacity; /* in blocks */
} blk_preimage_set;

struct blk_driver {
    blk_driver_config config;
    blk_storage_info *info;
    blk_queue_handle queues;
    uint8_t *data;
    size_t data_size;
    uint64_t capacity;      /* blocks */
    int fd;
    bool read_only;

    struct io_uring ring;
    int event_fd;           /* registered with the ring: readable on every completion */
    uint32_t unsubmitted;   /* SQEs prepared since the last submit */
    uint32_t in_ring;       /* SQEs prepared whose completions are not reaped yet */
    bool event_unread;      /* event_fd may be readable: read it at the next poll */

    /* inline I/O; a mode drops to OFF when the kernel or file system says it cannot */
    blk_inline_mode inline_read, inline_write;
    bool inline_flush;      /* answered at once, nothing to sync: only for a file in memory */
    uint32_t offload_write_bytes; /* WRITEs this large skip inline for a worker; 0: none */
    blk_inline_io_fn inline_io;
    const uint8_t *map;     /* the image's capacity, read-only, when it lives in memory */
    uint8_t *map_chunk_reads; /* per chunk of the map: reads seen before it is populated */

    blk_slot *slots;
    uint32_t slot_count;    /* = queue depth */
    uint32_t *free_slots;   /* stack */
    uint32_t free_count;
    uint32_t *waiting;      /* FIFO ring of slot numbers in arrival order */
    uint32_t waiting_head, waiting_count;
    uint32_t active;        /* ACTIVE + DONE slots */
    uint32_t active_writes; /* ACTIVE WRITE slots */
    blk_response *ready;    /* responses to publish this poll */
    uint32_t ready_count;

    /* device model */
    uint64_t *device_free_ns; /* per modelled device slot: when it is next free */
    uint32_t device_slots;
    uint64_t bus_free_ns;
    uint64_t timer_deadline_ns; /* the latest armed timeout's deadline; 0: none armed */
    struct __kernel_timespec timer_ts;
    uint32_t done_waiting;  /* DONE slots */

    /* faults */
    uint64_t valid_requests;
    uint64_t writes_started;
    bool power_cut;         /* later writes are dropped */
    bool cut_applied;       /* lose_unflushed has been resolved */
    uint64_t rng;
    FILE *log;
    blk_preimage_set preimages;

    blk_driver_stats stats;
};

uint64_t blk_now_ns(void);

/* For tests: set how READs and WRITEs are tried inline, and what does the transfer (NULL:
 * preadv2/pwritev2). */
void blk_driver_set_inline_io(blk_driver *d, blk_inline_mode read, blk_inline_mode write, blk_inline_io_fn io);

/* Reads from a mapping of an image in memory (blk_driver_mapped.c). blk_mapped_open maps
 * d->fd's capacity and is false when it cannot. blk_mapped_read copies len bytes at offset
 * when the chunks they lie in are read often enough to be worth populating (COLD: use the
 * system call this time), and fails when the image has shrunk under the mapping. */
typedef enum blk_mapped_result {
    BLK_MAPPED_DONE,
    BLK_MAPPED_COLD,
    BLK_MAPPED_FAULT,
} blk_mapped_result;

bool blk_mapped_open(blk_driver *d);
void blk_mapped_close(blk_driver *d);
blk_mapped_result blk_mapped_read(blk_driver *d, void *to, uint64_t offset, size_t len);

/* Device model: the modelled completion time of a request starting now (0: no model). */
uint64_t blk_model_deadline(blk_driver *d, const blk_request *req, uint64_t now);
bool blk_model_init(blk_driver *d);
void blk_model_free(blk_driver *d);

/* Fault injection. blk_faults_check returns a status to answer with instead of doing the
 * I/O (BLK_RESP_OK: go ahead). */
bool blk_faults_init(blk_driver *d);
void blk_faults_free(blk_driver *d);
uint32_t blk_faults_check(blk_driver *d, const blk_request *req);
/* A WRITE is about to start: counts it, saves old contents, decides whether it is dropped. */
bool blk_faults_write_starts(blk_driver *d, const blk_request *req);
void blk_faults_write_done(blk_driver *d, const blk_request *req);
void blk_faults_flush_starts(blk_driver *d);
/* Called when no write is in flight: resolves a pending power cut. */
void blk_faults_settle(blk_driver *d);

#endif
