/* The sDDF barrier rule kept in the PD (microkit_blk_order.h). */
#include "platform/microkit/microkit_blk_order.h"

static struct {
    blk_req_queue header;
    blk_request entries[MK_BLK_ORDER_MAX_CAPACITY];
} private_requests;

static struct {
    blk_resp_queue header;
    blk_response entries[MK_BLK_ORDER_MAX_CAPACITY];
} private_responses;

static blk_queue_handle mine;    /* we are its driver */
static blk_queue_handle real;    /* we are its client */
static blk_request held;         /* taken from ours, not yet passed on */
static bool holding;
static uint32_t outstanding;     /* passed on, not yet answered */
static bool answered_here;

void mk_blk_order_init(blk_req_queue *req, blk_resp_queue *resp, uint32_t capacity)
{
    blk_queue_init(&real, req, resp, capacity);
    uint32_t ours = capacity < MK_BLK_ORDER_MAX_CAPACITY ? capacity : MK_BLK_ORDER_MAX_CAPACITY;
    blk_queue_init(&mine, &private_requests.header, &private_responses.header, ours);
    holding = false;
    outstanding = 0;
}

blk_req_queue *mk_blk_order_requests(void) { return mine.req; }
blk_resp_queue *mk_blk_order_responses(void) { return mine.resp; }
uint32_t mk_blk_order_capacity(void) { return mine.capacity; }

bool mk_blk_order_forward(void)
{
    bool sent = false;
    for (;;) {
        if (!holding) {
            if (blk_dequeue_requests(&mine, &held, 1) == 0)
                break;
            holding = true;
        }
        if (held.code == BLK_REQ_BARRIER) {
            if (outstanding > 0)
                break;
            blk_response done = {.status = BLK_RESP_OK, .success_count = 0, .id = held.id};
            if (!blk_enqueue_response(&mine, done))
                break;
            answered_here = true;
            holding = false;
            continue;
        }
        if (!blk_enqueue_request(&real, held))
            break;
        outstanding++;
        holding = false;
        sent = true;
    }
    return sent;
}

bool mk_blk_order_collect(void)
{
    blk_response batch[32];
    uint32_t n;
    /* Never more than the private queue has room for; its room is made by the component,
     * which takes responses every pass. */
    while ((n = blk_resp_queue_space(&mine)) > 0 &&
           (n = blk_dequeue_responses(&real, batch, n < AF_ARRAY_LEN(batch) ? n : AF_ARRAY_LEN(batch))) > 0) {
        blk_enqueue_responses(&mine, batch, n);
        outstanding = outstanding > n ? outstanding - n : 0;
    }
    return mk_blk_order_forward();
}

bool mk_blk_order_answered(void)
{
    bool was = answered_here;
    answered_here = false;
    return was;
}
