/* The sDDF block protocol: storage info, request and response queues (docs/PROTOCOL.md §4).
 *
 * Binary-compatible with the seL4 Device Driver Framework. All quantities of data are in
 * BLK_TRANSFER_SIZE (4096-byte) units whatever the device's sector size. Queue capacity is
 * a run-time value, not necessarily a power of two; entry index = counter % capacity.
 *
 * Ordering: a producer writes its entries, issues a release fence, then advances tail; a
 * consumer loads tail with acquire, reads the entries, then advances head with release.
 * The producer owns tail, the consumer owns head; each only reads the other's counter.
 * Neither side trusts the other's counter: the length is clamped to the capacity so a
 * corrupt peer cannot make us index outside the queue.
 */
#ifndef ASYNCFAT_PROTOCOL_BLK_QUEUE_H
#define ASYNCFAT_PROTOCOL_BLK_QUEUE_H

#include "base/base.h"

#define BLK_TRANSFER_SIZE 4096u

typedef enum blk_request_code {
    BLK_REQ_READ = 0,
    BLK_REQ_WRITE = 1,
    BLK_REQ_FLUSH = 2,   /* make every completed write durable */
    BLK_REQ_BARRIER = 3, /* requests before it complete before any after it starts */
    /* asyncfat extension, not in sDDF (whose block protocol has no discard request): the
     * blocks [block_number, + count) hold nothing anyone needs; the driver may tell the
     * medium so (Linux: a hole punched in an image file, BLKDISCARD on a block device) or
     * answer an error. Sent only when the engine is configured for it (fat_config.discard),
     * never to an sDDF driver, which would refuse it (docs/PROTOCOL.md). */
    BLK_REQ_DISCARD = 4,
} blk_request_code;

typedef enum blk_response_status {
    BLK_RESP_OK = 0,
    BLK_RESP_ERR_UNSPEC = 1,
    BLK_RESP_ERR_INVALID_PARAM = 2,
    BLK_RESP_ERR_IO = 3,
    BLK_RESP_ERR_NO_DEVICE = 4,
} blk_response_status;

typedef struct blk_storage_info {
    char serial_number[64];
    bool read_only;           /* the device refuses writes: mount read-only */
    bool ready;               /* set last, with release; wait for it with acquire */
    uint16_t sector_size;     /* bytes: 512, 1024, 2048 or 4096 */
    uint16_t block_size;      /* optimal request size, in BLK_TRANSFER_SIZE units */
    uint16_t queue_depth;     /* requests the device works on at once */
    uint16_t cylinders, heads, blocks; /* geometry, informational */
    uint64_t capacity;        /* in BLK_TRANSFER_SIZE units */
} blk_storage_info;

typedef struct blk_request {
    uint32_t code;            /* blk_request_code */
    uint64_t io_or_offset;    /* byte offset of the buffer in the data region */
    uint64_t block_number;    /* in BLK_TRANSFER_SIZE units */
    uint16_t count;           /* in BLK_TRANSFER_SIZE units */
    uint32_t id;              /* the requester's, echoed in the response */
} blk_request;

typedef struct blk_response {
    uint32_t status;          /* blk_response_status */
    uint16_t success_count;   /* in BLK_TRANSFER_SIZE units */
    uint32_t id;
} blk_response;

typedef struct blk_req_queue {
    uint32_t head;            /* consumer (driver) advances */
    uint32_t tail;            /* producer (client) advances */
    bool plugged;             /* while set the driver must not take requests */
    blk_request buffers[];
} blk_req_queue;

typedef struct blk_resp_queue {
    uint32_t head;            /* consumer (client) advances */
    uint32_t tail;            /* producer (driver) advances */
    blk_response buffers[];
} blk_resp_queue;

_Static_assert(sizeof(blk_storage_info) == 88, "storage info layout");
_Static_assert(offsetof(blk_storage_info, read_only) == 64, "storage info layout");
_Static_assert(offsetof(blk_storage_info, ready) == 65, "storage info layout");
_Static_assert(offsetof(blk_storage_info, sector_size) == 66, "storage info layout");
_Static_assert(offsetof(blk_storage_info, block_size) == 68, "storage info layout");
_Static_assert(offsetof(blk_storage_info, queue_depth) == 70, "storage info layout");
_Static_assert(offsetof(blk_storage_info, cylinders) == 72, "storage info layout");
_Static_assert(offsetof(blk_storage_info, heads) == 74, "storage info layout");
_Static_assert(offsetof(blk_storage_info, blocks) == 76, "storage info layout");
_Static_assert(offsetof(blk_storage_info, capacity) == 80, "storage info layout");
_Static_assert(sizeof(blk_request) == 32, "request layout");
_Static_assert(offsetof(blk_request, io_or_offset) == 8, "request layout");
_Static_assert(offsetof(blk_request, block_number) == 16, "request layout");
_Static_assert(offsetof(blk_request, count) == 24, "request layout");
_Static_assert(offsetof(blk_request, id) == 28, "request layout");
_Static_assert(sizeof(blk_response) == 12, "response layout");
_Static_assert(offsetof(blk_response, success_count) == 4, "response layout");
_Static_assert(offsetof(blk_response, id) == 8, "response layout");
_Static_assert(offsetof(blk_req_queue, plugged) == 8, "request queue layout");
_Static_assert(offsetof(blk_req_queue, buffers) == 16, "request queue layout");
_Static_assert(offsetof(blk_resp_queue, buffers) == 8, "response queue layout");

/* Bytes a queue region needs for `capacity` entries. */
static inline size_t blk_req_queue_bytes(uint32_t capacity)
{
    return sizeof(blk_req_queue) + (size_t)capacity * sizeof(blk_request);
}
static inline size_t blk_resp_queue_bytes(uint32_t capacity)
{
    return sizeof(blk_resp_queue) + (size_t)capacity * sizeof(blk_response);
}

/* A queue handle: where the shared queue is and its capacity (not stored in shared memory,
 * so the peer cannot change it). */
typedef struct blk_queue_handle {
    blk_req_queue *req;
    blk_resp_queue *resp;
    uint32_t capacity;
} blk_queue_handle;

static inline void blk_queue_init(blk_queue_handle *h, blk_req_queue *req, blk_resp_queue *resp,
                                  uint32_t capacity)
{
    h->req = req;
    h->resp = resp;
    h->capacity = capacity;
}

/* Entries a consumer may take: tail - head, clamped to capacity against a corrupt peer. */
static inline uint32_t blk_queue_clamped_length(uint32_t head, uint32_t tail, uint32_t capacity)
{
    uint32_t n = tail - head;
    return n > capacity ? capacity : n;
}

/* Slots a producer at `tail` may fill. The slot of a counter is counter % capacity, which
 * jumps where the u32 counter wraps (2^32 is not a multiple of most capacities), so an
 * entry just before the wrap and one just after can share a slot. The producer therefore
 * never lets a batch cross the wrap, and writes past it only once the consumer has taken
 * everything before it (head > tail only while the queue straddles the wrap). Peers see
 * ordinary counters, so this stays compatible with any sDDF consumer. */
static inline uint32_t blk_queue_free_slots(uint32_t head, uint32_t tail, uint32_t capacity)
{
    uint32_t used = tail - head;
    if (used >= capacity || head > tail)
        return 0;
    uint32_t space = capacity - used;
    uint32_t until_wrap = 0u - tail; /* 0 means a whole 2^32 away */
    return until_wrap != 0 && until_wrap < space ? until_wrap : space;
}

/* ---- request queue: the client produces, the driver consumes ---- */

/* Free request slots, as the producer sees them (fewer for a moment at the counter wrap). */
static inline uint32_t blk_req_queue_space(const blk_queue_handle *h)
{
    return blk_queue_free_slots(af_load_acquire(&h->req->head), h->req->tail, h->capacity);
}

/* Write up to n requests; returns how many were queued (fewer when the queue fills). */
static inline uint32_t blk_enqueue_requests(blk_queue_handle *h, const blk_request *reqs, uint32_t n)
{
    uint32_t tail = h->req->tail;
    uint32_t space = blk_req_queue_space(h);
    if (n > space)
        n = space;
    for (uint32_t i = 0; i < n; i++)
        h->req->buffers[(tail + i) % h->capacity] = reqs[i];
    af_fence_release();
    af_store_release(&h->req->tail, tail + n);
    return n;
}

static inline bool blk_enqueue_request(blk_queue_handle *h, blk_request req)
{
    return blk_enqueue_requests(h, &req, 1) == 1;
}

/* Driver side: read up to max requests; returns how many were taken (0 while plugged). */
static inline uint32_t blk_dequeue_requests(blk_queue_handle *h, blk_request *out, uint32_t max)
{
    if (af_load_acquire(&h->req->plugged))
        return 0;
    uint32_t head = h->req->head;
    uint32_t n = blk_queue_clamped_length(head, af_load_acquire(&h->req->tail), h->capacity);
    if (n > max)
        n = max;
    for (uint32_t i = 0; i < n; i++)
        out[i] = h->req->buffers[(head + i) % h->capacity];
    af_store_release(&h->req->head, head + n);
    return n;
}

static inline void blk_req_queue_plug(blk_queue_handle *h) { af_store_release(&h->req->plugged, true); }
static inline void blk_req_queue_unplug(blk_queue_handle *h) { af_store_release(&h->req->plugged, false); }

/* ---- response queue: the driver produces, the client consumes ---- */

static inline uint32_t blk_resp_queue_space(const blk_queue_handle *h)
{
    return blk_queue_free_slots(af_load_acquire(&h->resp->head), h->resp->tail, h->capacity);
}

static inline uint32_t blk_enqueue_responses(blk_queue_handle *h, const blk_response *resps, uint32_t n)
{
    uint32_t tail = h->resp->tail;
    uint32_t space = blk_resp_queue_space(h);
    if (n > space)
        n = space;
    for (uint32_t i = 0; i < n; i++)
        h->resp->buffers[(tail + i) % h->capacity] = resps[i];
    af_fence_release();
    af_store_release(&h->resp->tail, tail + n);
    return n;
}

static inline bool blk_enqueue_response(blk_queue_handle *h, blk_response resp)
{
    return blk_enqueue_responses(h, &resp, 1) == 1;
}

static inline uint32_t blk_dequeue_responses(blk_queue_handle *h, blk_response *out, uint32_t max)
{
    uint32_t head = h->resp->head;
    uint32_t n = blk_queue_clamped_length(head, af_load_acquire(&h->resp->tail), h->capacity);
    if (n > max)
        n = max;
    for (uint32_t i = 0; i < n; i++)
        out[i] = h->resp->buffers[(head + i) % h->capacity];
    af_store_release(&h->resp->head, head + n);
    return n;
}

/* Storage info: the driver fills every field, then publishes ready. */
static inline void blk_storage_publish_ready(blk_storage_info *info) { af_store_release(&info->ready, true); }
static inline bool blk_storage_is_ready(const blk_storage_info *info) { return af_load_acquire(&info->ready); }

#endif
