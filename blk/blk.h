/* Block layer: a fiber-blocking client of the sDDF block queues, and a buffer cache.
 *
 * Units: every block number and count is in 4096-byte transfer blocks (BLK_TRANSFER_SIZE),
 * whatever the device's sector size; blk_client_sector_size() reports that size for the FAT
 * engine, which does read-modify-write of smaller sectors through the cache. Ranges are
 * checked against the device capacity (BLK_ERR_RANGE) before anything is queued.
 *
 * Fibers: functions marked "blocks" must run inside a task of the client's fp_pool. The
 * root context (event loop) calls blk_client_process_responses() to wake the tasks whose
 * requests completed and blk_client_end_pass() once per pass, which notifies the driver at
 * most once. A full request queue makes the submitting task wait (FIFO) for a free slot.
 *
 * Memory: nothing is allocated. The client takes an array of request slots; the cache
 * takes buffer metadata, a hash table, an optional wear-counter array, and two areas of the
 * DMA data region: its 4096-byte buffers (single-block reads land straight in them) and a
 * staging area for multi-block transfers (write-back runs, bypass reads, read-ahead).
 *
 * Cache pins: blk_cache_get pins a buffer until blk_cache_release; a pinned buffer is never
 * evicted or moved. Two tasks asking for a block that is being read share the one read; if
 * it fails, each gets the error and the buffer is dropped, never left looking valid. The
 * cache needs more buffers than tasks can hold pinned at once, or getters wait forever.
 * Write-back may take a dirty buffer at any blocking point of any task, so a task finishes
 * a consistent change to a pinned buffer (and marks it dirty) before it next blocks. It
 * takes it either as a copy in a staging slot, or in place: the device reads the buffer
 * itself, and blk_cache_prepare_write waits for that write before the buffer may change.
 * In place is for blocks that blk_cache_write_run filled whole (file contents, seldom
 * changed again at once; metadata blocks that many tasks change keep the copy, which never
 * makes them wait) when a run's buffers lie one after another in the data region, and for
 * shadows (never changed).
 *
 * Ordering rule (flush epochs): blk_cache_order_point() closes the current epoch. A dirty
 * buffer belongs to the epoch in which it was last marked dirty. Nothing of epoch E reaches
 * the device until every buffer of every epoch before E has been written and a FLUSH has
 * completed after those writes. A buffer about to be changed while still dirty from a closed
 * epoch keeps that version as a shadow copy in its own epoch (blk_cache_prepare_write), so
 * each epoch's version of a block reaches the device in epoch order and nothing of a later
 * epoch overtakes it. blk_cache_write_run writes belong to the epoch current at the call.
 * A failed write keeps its buffer dirty and blocks later epochs.
 *
 * Coherence of bypass transfers (read_run / write_run): blocks present in the cache are
 * served or updated in the cache; only absent blocks go straight to the device, and a cache
 * miss on a block whose bypass write is in flight waits for it. Read-ahead windows are
 * dropped when a write to their blocks is in flight during their lifetime.
 */
#ifndef ASYNCFAT_BLK_H
#define ASYNCFAT_BLK_H

#include "base/base.h"
#include "fiberpool/fiberpool.h"
#include "protocol/blk_queue.h"

typedef enum blk_status {
    BLK_OK = 0,
    BLK_ERR_IO,          /* the device reported an I/O error (or a short transfer) */
    BLK_ERR_INVALID,     /* bad argument, or the device said ERR_INVALID_PARAM */
    BLK_ERR_NO_DEVICE,   /* the device is not ready or has gone */
    BLK_ERR_RANGE,       /* block range outside the device, or buffer outside the region */
    BLK_ERR_READ_ONLY,   /* write to a read-only device */
    BLK_ERR_UNSPEC,      /* the device said ERR_UNSPEC or something unknown */
} blk_status;

#define BLK_NONE UINT32_MAX
#define BLK_CLIENT_MAX_SLOTS 65535u

/* ---- client ------------------------------------------------------------------------- */

/* One asynchronous request's completion record, owned by the submitter (often on its
 * stack): it must stay alive until blk_io_wait returns or io->done is seen. */
typedef struct blk_io {
    fp_queue waiters;         /* tasks blocked in blk_io_wait */
    /* Optional, set by the submitter after blk_client_submit returned BLK_OK and before it
     * next blocks: called from the root when the response arrives, after the waiters are
     * woken. It must not block; it may end the io's life (free its memory). */
    void (*on_done)(struct blk_io *io);
    blk_status status;
    uint16_t success_count;   /* blocks the device completed */
    bool done;
} blk_io;

/* Private: one request in flight. Its id on the wire is generation << 16 | index, so a
 * stale or forged response id is recognised and ignored. */
typedef struct blk_request_slot {
    blk_io *io;
    uint32_t next_free;
    uint16_t generation;
    uint16_t count;
    uint8_t code;
    bool in_use;
} blk_request_slot;

typedef struct blk_client_config {
    fp_pool *pool;
    blk_storage_info *info;   /* must be ready (blk_storage_is_ready) before init */
    blk_queue_handle queue;
    uint8_t *data_region;
    uint64_t data_region_size;
    void (*notify)(void *ctx); /* tell the driver there are new requests */
    void *notify_ctx;
    blk_request_slot *slots;  /* slot_count records; at most min(slot_count, queue capacity) */
    uint32_t slot_count;      /* requests are in flight at once; <= BLK_CLIENT_MAX_SLOTS */
} blk_client_config;

typedef struct blk_client_stats {
    uint64_t requests;        /* queued */
    uint64_t notifications;   /* to the driver */
    uint64_t space_waits;     /* a task found every slot in use and waited */
    uint64_t errors;          /* responses with a failure status */
    uint64_t bogus_responses; /* ids we never issued or already completed: ignored */
} blk_client_stats;

typedef struct blk_client {
    fp_pool *pool;
    blk_storage_info *info;
    blk_queue_handle queue;
    uint8_t *data_region;
    uint64_t data_region_size;
    void (*notify)(void *ctx);
    void *notify_ctx;
    blk_request_slot *slots;
    uint32_t slot_count;
    uint32_t free_slot;       /* head of the free list */
    uint32_t in_flight;       /* slots in use (or handed to a woken waiter) */
    fp_queue space_waiters;
    bool notify_pending;
    bool read_only;
    uint16_t sector_size;
    uint64_t capacity;        /* in BLK_TRANSFER_SIZE units */
    blk_client_stats stats;
} blk_client;

blk_status blk_client_init(blk_client *c, const blk_client_config *cfg);

/* Queue one request; blocks only while every slot is in use. The data buffer is
 * [data_offset, data_offset + count * 4096) in the data region. A bad argument returns an
 * error with io untouched; once io is set up (before any blocking), other tasks may wait
 * on it, and a failure to queue completes it with the error returned. */
blk_status blk_client_submit(blk_client *c, blk_request_code code, uint64_t block, uint32_t count,
                             uint64_t data_offset, blk_io *io);
/* Blocks until io completes (any number of tasks may wait on one io); returns its status. */
blk_status blk_io_wait(blk_client *c, blk_io *io);

/* Blocks: makes every write completed before it durable. OK at once on a read-only device. */
blk_status blk_client_flush(blk_client *c);

/* Root: drain the response queue, complete each request's blk_io and wake its waiter.
 * Returns the number of responses taken. */
uint32_t blk_client_process_responses(blk_client *c);
/* Root: notify the driver once if anything was queued since the last call. */
void blk_client_end_pass(blk_client *c);

static inline uint64_t blk_client_capacity_blocks(const blk_client *c) { return c->capacity; }
static inline uint32_t blk_client_sector_size(const blk_client *c) { return c->sector_size; }
static inline bool blk_client_read_only(const blk_client *c) { return c->read_only; }
static inline uint32_t blk_client_in_flight(const blk_client *c) { return c->in_flight; }
static inline const blk_client_stats *blk_client_get_stats(const blk_client *c) { return &c->stats; }

/* ---- buffer cache --------------------------------------------------------------------- */

typedef enum blk_buf_state {
    BLK_BUF_FREE,
    BLK_BUF_READING,          /* busy: a device read is filling it; getters wait */
    BLK_BUF_VALID,
    BLK_BUF_FAILED,           /* its read failed: unhashed, freed when the last pin goes */
} blk_buf_state;

/* One cached block. Fields are private; use blk_buf_data / blk_buf_block. */
typedef struct blk_buf {
    uint64_t block;
    uint8_t *data;            /* 4096 bytes in the data region */
    fp_queue waiters;         /* tasks waiting for the read to finish */
    uint32_t hash_next;       /* index of the next buffer in the bucket, BLK_NONE ends */
    uint32_t free_next;
    uint32_t dirty_prev, dirty_next; /* the dirty list, oldest epoch first */
    uint32_t pins;
    uint32_t epoch;           /* flush epoch of its dirty contents */
    blk_status read_status;
    uint8_t state;            /* blk_buf_state */
    bool dirty;
    bool writing;             /* a write-back of it is in flight: not evictable */
    bool in_place;            /* ... and the device reads this buffer's own memory */
    bool whole_data;          /* last dirtied whole by blk_cache_write_run */
    bool referenced;          /* CLOCK reference bit */
    bool shadow;              /* an earlier epoch's version of `block`, kept to be written
                                 before the newer one: dirty, unhashed, freed once written */
} blk_buf;

static inline uint8_t *blk_buf_data(blk_buf *buf) { return buf->data; }
static inline uint64_t blk_buf_block(const blk_buf *buf) { return buf->block; }

#define BLK_CACHE_MAX_TRANSFERS 32u
/* blk_cache_write_run sends writes of at most this many blocks through cache buffers. */
#define BLK_CACHE_SMALL_WRITE_BLOCKS 4u
#define BLK_CACHE_STREAMS 4u
/* Buffers that write-back made clean, remembered as the first to evict: in a cache that is
 * mostly dirty, CLOCK would step over many dirty buffers to find each of them. */
#define BLK_CACHE_CLEANED 64u
#define BLK_CACHE_PREFETCHES 8u

/* Private: a multi-block transfer in flight (or a read-ahead window waiting for its
 * reader), in the cache's table so that misses and windows can see overlapping writes. */
typedef enum blk_transfer_kind {
    BLK_XFER_FREE,
    BLK_XFER_READ,            /* bypass read */
    BLK_XFER_READ_AHEAD,
    BLK_XFER_WRITE,           /* bypass write (waited for, or behind: see write_run) */
    BLK_XFER_WRITEBACK,
} blk_transfer_kind;

typedef struct blk_transfer {
    uint64_t block;
    uint32_t count;
    uint32_t staging_slot;    /* BLK_NONE: none (zero-copy) */
    uint32_t shadow;          /* write-back of a shadow buffer (its index), or BLK_NONE */
    uint32_t users;           /* tasks waiting on or copying out of a read-ahead window */
    uint64_t sequence;        /* issue order, to find the oldest window */
    uint8_t kind;             /* blk_transfer_kind */
    bool stale;               /* a write overlapped it: its data must not be used */
    bool behind;              /* a write nobody waits for: released when its response comes */
    bool failed;              /* a write behind that failed, its data still in its slot */
    bool retrying;            /* a task is sending a failed write behind again */
    uint32_t epoch;           /* of a bypass write */
    struct blk_cache *cache;  /* for a write behind's completion */
    blk_io io;
    fp_queue waiters;         /* misses waiting for a bypass write to finish */
} blk_transfer;

/* Private: a read blk_cache_prefetch started, published when its response comes. */
typedef struct blk_prefetch {
    blk_io io;
    struct blk_cache *cache;
    uint32_t first;           /* index of its first buffer */
    uint32_t count;
    bool busy;
} blk_prefetch;

typedef struct blk_stream {
    uint64_t next_block;      /* where the next sequential read_run would start */
    uint64_t ahead_end;       /* read-ahead issued up to here */
    uint64_t last_use;
} blk_stream;

typedef struct blk_cache_config {
    blk_client *client;
    uint64_t buffers_offset;  /* where the buffers start in the data region (4096-aligned) */
    uint32_t buffer_count;    /* number of 4096-byte buffers there */
    blk_buf *bufs;            /* buffer_count metadata records */
    uint32_t *hash_heads;     /* hash_size bucket heads */
    uint32_t hash_size;       /* power of two, ideally >= buffer_count */
    uint64_t staging_offset;  /* staging area in the data region */
    uint32_t staging_slots;   /* 1 .. BLK_CACHE_MAX_TRANSFERS / 2 */
    uint32_t staging_slot_blocks; /* blocks per slot = longest merged request, 1 .. 65535 */
    uint32_t *wear;           /* optional: writes per block for blocks < wear_count */
    uint32_t wear_count;
    uint32_t read_ahead_blocks; /* read-ahead target for sequential read_run; 0 disables */
} blk_cache_config;

typedef struct blk_cache_stats {
    uint64_t hits, misses;
    uint64_t device_reads, device_writes;  /* requests */
    uint64_t merged_requests;  /* write-back requests that carried more than one block */
    uint64_t evictions;
    uint64_t flushes;          /* FLUSH requests sent */
    uint64_t read_ahead_blocks;      /* blocks prefetched */
    uint64_t read_ahead_used_blocks; /* of those, blocks a reader took */
    uint64_t prefetched_blocks;      /* read by blk_cache_prefetch */
    uint64_t bypass_read_blocks, bypass_write_blocks;
    uint64_t shadow_copies;    /* earlier-epoch versions kept aside by prepare_write */
    uint64_t in_place_writes;  /* write-back requests sent from a buffer itself, no copy */
    uint64_t cleaned_evictions; /* evictions of a buffer write-back had just made clean */
    uint64_t write_behind_blocks;    /* of bypass_write_blocks, written without waiting */
} blk_cache_stats;

typedef struct blk_cache {
    blk_client *client;
    fp_pool *pool;
    blk_buf *bufs;
    uint32_t buffer_count;
    uint32_t *hash_heads;
    uint32_t hash_mask;
    uint32_t hash_shift;
    uint32_t free_head;       /* free buffers, a stack */
    uint32_t clock_hand;
    uint32_t cleaned[BLK_CACHE_CLEANED]; /* a ring of buffer indexes, oldest at cleaned_head */
    uint32_t cleaned_head, cleaned_count;
    bool sweep_futile;        /* the last sweep found nothing, and nothing was unpinned or
                                 written back since (buffer_take) */
    uint64_t buffers_offset;
    uint32_t dirty_count;
    uint32_t dirty_head, dirty_tail; /* dirty buffers in non-decreasing epoch order */
    fp_queue buffer_waiters;  /* getters that found no evictable buffer */
    uint64_t staging_offset;
    uint32_t staging_slots;
    uint32_t staging_slot_blocks;
    uint32_t staging_free;    /* bitmask of free staging slots */
    fp_queue staging_waiters;
    blk_transfer transfers[BLK_CACHE_MAX_TRANSFERS];
    uint64_t transfer_sequence;
    fp_queue transfer_waiters;
    blk_stream streams[BLK_CACHE_STREAMS];
    blk_prefetch prefetches[BLK_CACHE_PREFETCHES];
    uint64_t stream_clock;
    uint32_t read_ahead_blocks;
    uint32_t *wear;
    uint32_t wear_count;
    uint32_t epoch;           /* epoch that mark_dirty assigns now */
    bool epoch_dirtied;       /* something was marked dirty in it */
    uint32_t written_unflushed_epoch; /* newest epoch written since the last FLUSH; 0: none */
    uint32_t data_unflushed_epoch; /* oldest epoch of a bypass write completed since the
                                      last FLUSH was sent; UINT32_MAX: none */
    blk_status behind_error;  /* a failed write behind lost data: the next flush says so */
    fp_queue data_write_waiters; /* woken when a bypass write completes */
    fp_mutex writeback_lock;  /* one write-back sequence at a time keeps epochs in order */
    uint64_t writeback_batches; /* completed; a task that waited for the lock while one
                                   finished retries for a buffer before writing another */
    blk_cache_stats stats;
} blk_cache;

blk_status blk_cache_init(blk_cache *cache, const blk_cache_config *cfg);

typedef enum blk_get_mode {
    BLK_GET_READ,
    BLK_GET_OVERWRITE,        /* the caller fills all 4096 bytes: a miss reads nothing */
} blk_get_mode;

/* Blocks: find or load `block` and pin it. On error *out is NULL. An OVERWRITE miss returns
 * a buffer of unspecified contents that the caller must fill and mark dirty before it next
 * blocks (other tasks see the buffer as valid). */
blk_status blk_cache_get(blk_cache *cache, uint64_t block, blk_get_mode mode, blk_buf **out);

/* Blocks: get (BLK_GET_READ) and pin up to `count` consecutive blocks from `block`, their
 * misses read from the device at once rather than one after another. *got (>= 1 on BLK_OK)
 * says how many: fewer than asked when the cache had no buffer to spare without waiting,
 * or at the end of the device. On error nothing stays pinned. */
#define BLK_CACHE_GET_MANY_MAX 64u
blk_status blk_cache_get_many(blk_cache *cache, uint64_t block, uint32_t count, blk_buf **out, uint32_t *got);

/* Blocks (only while every request slot is in use): start reading the blocks of
 * [block, block + count) that are not cached, for a scan that will get them next, and
 * return without waiting; a get of one of them waits for its read. Only free buffers are
 * used (a prefetch never evicts), at most BLK_CACHE_GET_MANY_MAX blocks, in requests of
 * blocks whose buffers lie one after another; it stops early when no buffer or no
 * prefetch record (BLK_CACHE_PREFETCHES in flight) is free. Nothing is pinned; a failed
 * read leaves its blocks uncached. */
void blk_cache_prefetch(blk_cache *cache, uint64_t block, uint32_t count);

/* Blocks: make a pinned buffer safe to change in the current epoch. A buffer still dirty
 * from a closed epoch first has that version copied aside (a shadow, written back in its
 * own epoch), so the change cannot carry it to the device late, after writes of the epochs
 * between that depend on it. A buffer whose write-back is in flight in place (see Cache pins)
 * first waits for that write. Call it before every change to a pinned buffer; then change
 * it and mark it dirty without blocking in between (if anything else blocks first, prepare
 * it again). blk_cache_write_bytes and write_run do it. */
blk_status blk_cache_prepare_write(blk_cache *cache, blk_buf *buf);
/* Blocks: the same for two pinned buffers at once (b may be NULL), for a change that spans
 * two blocks (a FAT12 entry across a block boundary): on BLK_OK both are ready together,
 * to be changed and marked dirty with no blocking point in between. */
blk_status blk_cache_prepare_write_pair(blk_cache *cache, blk_buf *a, blk_buf *b);
/* (A miss with no clean buffer to evict first writes back the oldest dirty epoch; if that
 * write fails, the miss returns its error rather than wait for a device that fails.) */
/* The pinned buffer's contents changed: it will be written back in the current epoch. */
void blk_cache_mark_dirty(blk_cache *cache, blk_buf *buf);
/* Unpin. Never blocks. */
void blk_cache_release(blk_cache *cache, blk_buf *buf);

/* Blocks: byte-granular access through the cache (partial blocks read-modify-write);
 * may span blocks. */
blk_status blk_cache_read_bytes(blk_cache *cache, uint64_t byte_offset, void *dst, size_t len);
blk_status blk_cache_write_bytes(blk_cache *cache, uint64_t byte_offset, const void *src, size_t len);

/* Blocks: large contiguous transfers between memory and the device. Cached blocks are
 * served from / written into the cache; absent ones go straight to the device in requests
 * of up to staging_slot_blocks. Reads go through a staging slot, or, when dst lies inside
 * the data region (outside the cache's buffers and staging area), the device transfers to
 * it directly, up to 65535 blocks per request. A lone absent block (between cached ones, or
 * the call's only one) takes no transfer or staging slot, so any number of such reads run
 * at once: read into ordinary memory it goes through a cache buffer and stays cached; into
 * the data region it goes straight there and the cache is left as it was. Sequential readers into ordinary memory get
 * read-ahead (read_ahead_blocks ahead, into staging slots no one else needs); zero-copy
 * readers do not, as a window would cost them a copy.
 * Written blocks are data that no earlier epoch's writes depend on (the caller's promise:
 * for a file system, file data in clusters that are free or the file's own on the device),
 * so a write_run does not wait for earlier epochs; everything after an order point that
 * follows the call is written after it. Runs of more than BLK_CACHE_SMALL_WRITE_BLOCKS
 * absent blocks from ordinary memory are written behind: the call returns once the data
 * is copied to a staging slot and sent (from the data region: see below). If such a write fails, its data becomes dirty cache buffers (write-back
 * tries again), or stays in its slot to be sent again; data is lost only when every slot
 * is held by failed writes, and the next blk_cache_flush then returns the error. Written
 * data is durable only after blk_cache_flush. */
blk_status blk_cache_read_run(blk_cache *cache, uint64_t block, uint32_t count, void *dst);
blk_status blk_cache_write_run(blk_cache *cache, uint64_t block, uint32_t count, const void *src);

/* Writes from memory inside the data region (outside the cache's buffers and staging
 * area) need no copy: the device reads that memory, so it must stay unchanged until the
 * write is done. blk_cache_write_run_start sends such parts of a run and leaves them in
 * flight in *batch (any other part is handled as write_run does); blk_write_batch_wait
 * waits for them and returns the first error. Meanwhile readers and writers of those
 * blocks wait for them, and the ordering rule is that of write_run. write_run itself is
 * start + wait. */
#define BLK_WRITE_BATCH_MAX 8u
typedef struct blk_write_batch {
    blk_transfer *parts[BLK_WRITE_BATCH_MAX];
    uint32_t count;
    blk_status status;        /* of parts already waited for */
} blk_write_batch;

static inline void blk_write_batch_init(blk_write_batch *batch)
{
    batch->count = 0;
    batch->status = BLK_OK;
}
blk_status blk_cache_write_run_start(blk_cache *cache, uint64_t block, uint32_t count, const void *src,
                                     blk_write_batch *batch);
blk_status blk_write_batch_wait(blk_cache *cache, blk_write_batch *batch);

/* Blocks: write back every buffer dirty at the call (merged runs, epoch by epoch), wait for
 * the writes behind sent before the call, then a FLUSH. Returns the first error, including
 * a write behind's lost data since the last flush (reported once); failed buffers stay
 * dirty. */
blk_status blk_cache_flush(blk_cache *cache);
/* Close the current flush epoch (see the ordering rule above). Never blocks. */
void blk_cache_order_point(blk_cache *cache);
/* A mark in the write order, for a caller that must later order something after a change
 * it made earlier without ordering everything in between ("order after this point"). Take
 * it just after the change; a zeroed mark orders nothing. Its contents are private. */
typedef struct blk_order_mark {
    uint32_t epoch;
} blk_order_mark;
static inline blk_order_mark blk_cache_order_mark(const blk_cache *cache)
{
    return (blk_order_mark){cache->epoch};
}
/* Everything changed from now on reaches the device after everything changed before
 * `mark` was taken: an order point if no order point has come since the mark, else
 * nothing. Never blocks. */
void blk_cache_order_after(blk_cache *cache, blk_order_mark mark);
/* Blocks: write back one batch (up to one merged run per staging slot, sent together) from
 * the oldest dirty epoch on, FLUSHing first if an earlier epoch is written but not yet
 * flushed. A batch spans several epochs when each fits: BARRIER, FLUSH, BARRIER between
 * them keep the order on the device (a failed write cannot hold back the epochs after
 * it in the same batch; it is dirty again). BLK_OK when there was nothing to do. */
blk_status blk_cache_writeback_some(blk_cache *cache);
/* Drop every clean, unpinned buffer and every read-ahead window (e.g. after a remount or
 * when another writer changed the device). */
void blk_cache_invalidate(blk_cache *cache);

static inline const blk_cache_stats *blk_cache_get_stats(const blk_cache *cache) { return &cache->stats; }
static inline uint32_t blk_cache_dirty_count(const blk_cache *cache) { return cache->dirty_count; }
/* Device writes that included `block` (counted for block < wear_count, else 0). */
uint32_t blk_cache_writes_of_block(const blk_cache *cache, uint64_t block);
static inline blk_client *blk_cache_client(blk_cache *cache) { return cache->client; }
/* The fiber pool whose tasks may use the cache (the client's). */
static inline fp_pool *blk_cache_pool(blk_cache *cache) { return cache->pool; }

/* ---- block stack ---------------------------------------------------------------------- */

/* The fiber pool, block client and buffer cache every user of the block layer needs (the
 * server component, the offline tools, the tests and benchmarks), assembled one way: sizes
 * from options, memory from the regions given and one arena for the metadata.
 *
 * The first cache_bytes of the data region hold the cache's buffers, then its staging
 * area; the rest of the region is the caller's (clients' share windows, test scratch).
 * Options left 0 are chosen from that space: staging gets BLK_STACK_STAGING_SLOTS slots of
 * BLK_STACK_STAGING_SLOT_BLOCKS blocks, the slot size halved (down to
 * BLK_STACK_MIN_SLOT_BLOCKS), then the slot count cut, until BLK_STACK_MIN_BUFFERS buffers
 * (half the space, if that is less) are left over; the buffers take the rest. A 2 MiB
 * region so gets 16 slots of 16 blocks and 256 buffers; 24 MiB, 16 of 256 and 2048. */
#define BLK_STACK_STAGING_SLOTS 16u
#define BLK_STACK_STAGING_SLOT_BLOCKS 256u
#define BLK_STACK_MIN_SLOT_BLOCKS 16u
#define BLK_STACK_MIN_BUFFERS 256u

typedef struct blk_stack_options {
    uint32_t fibers;              /* fiber slots: tasks alive at once */
    uint32_t request_slots;       /* block requests in flight; 0: the queue's capacity */
    uint32_t cache_buffers;       /* 0: what the space holds after staging */
    uint32_t staging_slots;       /* 0: chosen from the space */
    uint32_t staging_slot_blocks; /* 0: chosen from the space */
    uint32_t read_ahead_blocks;   /* sequential read-ahead; 0: none. A chosen staging layout
                                     cuts it to half its staging area */
    uint32_t wear_blocks;         /* count device writes of blocks below this; 0: none */
    bool paint_stacks;            /* measure the fibers' stack use (fp_config) */
} blk_stack_options;

/* Where the stack lives. */
typedef struct blk_stack_regions {
    blk_storage_info *info;       /* ready (blk_storage_is_ready) */
    blk_queue_handle queue;
    uint8_t *data;                /* the data region shared with the driver */
    uint64_t data_size;
    uint64_t cache_bytes;         /* the cache's part of it, from its start */
    void (*notify)(void *ctx);    /* tell the driver there are new requests */
    void *notify_ctx;
    void *stacks;                 /* fiber i's stack: [stacks + i * stack_stride + guard_size, */
    size_t stack_stride;          /*   stacks + (i + 1) * stack_stride), fp_config's rule */
    size_t guard_size;
    const fp_stack_area *stack_areas; /* or stacks from several areas (fp_config's rule), */
    uint32_t stack_area_count;        /* used instead of the three above when count > 0 */
} blk_stack_regions;

/* What the options come to in a given space. */
typedef struct blk_stack_layout {
    uint32_t buffers;
    uint32_t staging_slots;
    uint32_t staging_slot_blocks;
    uint32_t read_ahead_blocks;
    uint32_t request_slots;
    size_t arena_bytes;           /* metadata: task records, request slots, buffer records,
                                     hash heads, wear counters */
} blk_stack_layout;

typedef struct blk_stack {
    fp_pool pool;
    blk_client client;
    blk_cache cache;
} blk_stack;

/* The layout for cache_bytes of data region and a queue of queue_capacity entries; false
 * when the options cannot work there (buffers and staging do not fit, or a value is out of
 * range). */
bool blk_stack_plan(const blk_stack_options *o, uint64_t cache_bytes, uint32_t queue_capacity,
                    blk_stack_layout *out);
/* Set the pool, then the client, then the cache up. arena: plan's arena_bytes, 16-byte
 * aligned. A failure after the pool is set up leaves the pool usable (fp_slot_count > 0)
 * for tasks that need no block I/O. BLK_ERR_INVALID: options, regions or arena unusable. */
blk_status blk_stack_init(blk_stack *s, const blk_stack_options *o, const blk_stack_regions *r, void *arena,
                          size_t arena_size);
/* Root: one event-loop pass of the block side: take the driver's responses (waking their
 * tasks), run ready tasks, notify the driver once. True if anything happened. */
bool blk_stack_pass(blk_stack *s);

#endif
