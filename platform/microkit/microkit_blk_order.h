/* The sDDF barrier rule, kept inside the PD.
 *
 * asyncfat's cache relies on sDDF's BARRIER: requests queued after it start only once
 * every request queued before it is done. It sends several flush epochs, and successive
 * versions of one block, in one batch with BARRIERs between them. sDDF's virtio block
 * driver (which the block virtualiser passes BARRIER and FLUSH to) answers a BARRIER at
 * once, whatever is still in flight, and QEMU's virtio device completes requests in any
 * order; so an older version of a block could land after a newer one. (Seen: a file's
 * directory entry left at its old contents after a clean unmount.)
 *
 * So the file-system component gets private block queues in the PD's own memory, and this
 * layer moves requests from them to the real queues in order, except that a BARRIER is held
 * until every request before it has its response; then it is answered here (OK) and never
 * sent. Responses move back unchanged. Costs a copy of each 32-byte request and 12-byte
 * response, and a round trip per BARRIER.
 */
#ifndef ASYNCFAT_PLATFORM_MICROKIT_BLK_ORDER_H
#define ASYNCFAT_PLATFORM_MICROKIT_BLK_ORDER_H

#include "base/base.h"
#include "protocol/blk_queue.h"

/* Private queues hold up to this many requests (the component sees this capacity when the
 * real queue's num_buffers is larger). */
#define MK_BLK_ORDER_MAX_CAPACITY 1024u

/* The real queues (the virtualiser's or driver's) of `capacity` entries. */
void mk_blk_order_init(blk_req_queue *req, blk_resp_queue *resp, uint32_t capacity);

/* The private queues the component uses, and their capacity. */
blk_req_queue *mk_blk_order_requests(void);
blk_resp_queue *mk_blk_order_responses(void);
uint32_t mk_blk_order_capacity(void);

/* Move requests on, as far as the rule and the real queue allow. True if any went to the
 * real queue (the driver is to be notified). */
bool mk_blk_order_forward(void);
/* Take the real responses into the private queue, then forward. True as forward. */
bool mk_blk_order_collect(void);
/* True (once) if BARRIERs were answered here since the last call: the component is to run
 * again to see their responses. */
bool mk_blk_order_answered(void);

#endif
