/* The client library's connection: the pending-call table, completion polling and the
 * share-region allocator (see fs_client.h; the commands are in fs_client_calls.c). */
#include "tools/fs_client.h"

#include "platform/linux/channel_wake.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#define SLOT_BITS 16u

static uint64_t slot_id(const fs_conn *c, uint32_t index)
{
    return ((uint64_t)c->slots[index].generation << SLOT_BITS) | index;
}

/* Caller holds c->lock. */
static void complete_slot(fs_conn *c, uint32_t index, const fs_cmpl *cmpl)
{
    fs_conn_slot *s = &c->slots[index];
    s->cmpl = *cmpl;
    s->done = true;
    pthread_cond_signal(&s->done_cond);
}

/* Caller holds c->lock: the server is gone, so nothing pending will ever complete. */
static void fail_pending(fs_conn *c)
{
    c->broken = true;
    for (uint32_t i = 0; i < c->slots_ready; i++) {
        fs_conn_slot *s = &c->slots[i];
        if (s->in_use && !s->done) {
            fs_cmpl failed = {.id = slot_id(c, i), .status = FS_STATUS_IO_ERROR};
            complete_slot(c, i, &failed);
            if (c->ep.completed) {
                s->refused = true;
                c->refused_count++;
            }
        }
    }
}

/* Caller holds c->lock: slot t is free again. */
static void free_slot(fs_conn *c, uint32_t t)
{
    fs_conn_slot *s = &c->slots[t];
    s->in_use = false;
    s->done = false;
    s->refused = false;
    c->pending--;
    pthread_cond_signal(&c->slot_free);
}

/* Hand every published completion to its slot (event-driven: to the completed callback,
 * the slot freed first, without the lock held). Only the poller calls this. */
static void take_completions(fs_conn *c)
{
    fs_msg batch[64];
    uint32_t tickets[64];
    uint32_t n;
    while ((n = fs_queue_consume(&c->completions, batch, AF_ARRAY_LEN(batch))) > 0) {
        uint32_t deliver = 0;
        pthread_mutex_lock(&c->lock);
        for (uint32_t i = 0; i < n; i++) {
            const fs_cmpl *cmpl = &batch[i].cmpl;
            uint64_t index = cmpl->id & ((1u << SLOT_BITS) - 1);
            /* A completion we did not ask for (stale or bogus id) is dropped. */
            if (index >= c->slots_ready || cmpl->id != slot_id(c, (uint32_t)index))
                continue;
            fs_conn_slot *s = &c->slots[index];
            if (!s->in_use || s->done)
                continue;
            if (c->ep.completed) {
                free_slot(c, (uint32_t)index);
                batch[deliver] = batch[i];
                tickets[deliver++] = (uint32_t)index;
            } else {
                complete_slot(c, (uint32_t)index, cmpl);
            }
        }
        pthread_mutex_unlock(&c->lock);
        for (uint32_t i = 0; i < deliver; i++)
            c->ep.completed(c->ep.event_ctx, tickets[i], &batch[i].cmpl);
    }
}

void fs_conn_dispatch(fs_conn *c)
{
    take_completions(c);
    while (c->refused_count > 0) {
        fs_cmpl cmpl;
        uint32_t t = FS_CONN_MAX_PENDING;
        pthread_mutex_lock(&c->lock);
        for (uint32_t i = 0; i < c->slots_ready && t == FS_CONN_MAX_PENDING; i++)
            if (c->slots[i].in_use && c->slots[i].refused)
                t = i;
        if (t < FS_CONN_MAX_PENDING) {
            cmpl = c->slots[t].cmpl;
            free_slot(c, t);
            c->refused_count--;
        }
        pthread_mutex_unlock(&c->lock);
        if (t == FS_CONN_MAX_PENDING)
            break;
        c->ep.completed(c->ep.event_ctx, t, &cmpl);
    }
}

static bool completions_ready(void *completions) { return fs_queue_available(completions) > 0; }

/* Each poller thread's spin budget (channel_wake.h): it adapts to that thread's waits. */
static _Thread_local lx_spin poller_spin; /* zero: the maximum budget */

/* One turn as the poller, without c->lock: sleep until the server notifies (or a second
 * passes, or the connection closes), then drain. lx_bell_wait clears the eventfd and the
 * bell before it returns, so a completion published after the drain always finds one of
 * them set for the next turn. */
static void poll_turn(fs_conn *c)
{
    if (c->ep.wait) {
        c->ep.wait(c->ep.event_ctx, 1000);
        take_completions(c);
        if (c->ep.healthy && !c->ep.healthy(c->ep.healthy_ctx)) {
            pthread_mutex_lock(&c->lock);
            fail_pending(c);
            pthread_mutex_unlock(&c->lock);
        }
        return;
    }
    int rc = lx_bell_wait(c->ep.wait_fd, c->ep.notify_fd, c->stop_fd, 1000, &poller_spin, completions_ready, &c->completions, NULL);
    if (rc < 0) {
        pthread_mutex_lock(&c->lock);
        fail_pending(c);
        pthread_mutex_unlock(&c->lock);
        return;
    }
    take_completions(c);
    if (rc == 0 && c->ep.healthy && !c->ep.healthy(c->ep.healthy_ctx)) {
        pthread_mutex_lock(&c->lock);
        fail_pending(c);
        pthread_mutex_unlock(&c->lock);
    }
}

/* Caller holds c->lock. Before a caller waits: tell the server about the commands queued
 * since it was last told (one notification for a batch of calls). */
static void flush_notify(fs_conn *c)
{
    if (!c->notify_owed)
        return;
    c->notify_owed = false;
    if (lx_bell_ring(c->ep.notify_fd) != 0)
        fail_pending(c);
}

/* Caller holds c->lock. Wait until slot s is done. The first waiter becomes the poller and
 * reads the completion queue itself; the others sleep until the poller hands them their
 * completion, or hands them the poller's job when its own call is done. A lone caller so
 * wakes straight from the server's notification, with no thread in between. */
static void wait_done(fs_conn *c, fs_conn_slot *s)
{
    if (!s->done)
        flush_notify(c);
    c->waiters++;
    s->waiting = true;
    while (!s->done) {
        if (c->polling) {
            pthread_cond_wait(&s->done_cond, &c->lock);
            continue;
        }
        c->polling = true;
        pthread_mutex_unlock(&c->lock);
        poll_turn(c);
        pthread_mutex_lock(&c->lock);
        c->polling = false;
    }
    s->waiting = false;
    c->waiters--;
    if (c->waiters > 0) {
        for (uint32_t i = 0; i < c->slots_ready; i++) {
            if (c->slots[i].waiting && !c->slots[i].done) {
                pthread_cond_signal(&c->slots[i].done_cond);
                break;
            }
        }
    }
}

int fs_conn_open(fs_conn *c, const fs_conn_endpoint *ep)
{
    memset(c, 0, offsetof(fs_conn, slots)); /* the slots as they are first taken */
    c->ep = *ep;
    pthread_mutex_init(&c->lock, NULL);
    pthread_cond_init(&c->slot_free, NULL);
    pthread_mutex_init(&c->share_lock, NULL);
    pthread_cond_init(&c->share_freed, NULL);
    fs_queue_end_init(&c->commands, ep->commands, true);
    fs_queue_end_init(&c->completions, ep->completions, false);
    c->page_count = (uint32_t)(ep->share_size / FS_CONN_PAGE);
    c->page_used = calloc(c->page_count ? c->page_count : 1, 1);
    c->run_pages = calloc(c->page_count ? c->page_count : 1, sizeof(uint32_t));
    c->stop_fd = eventfd(0, EFD_CLOEXEC);
    if (!c->page_used || !c->run_pages || c->stop_fd < 0) {
        fs_conn_close(c);
        errno = ENOMEM;
        return -1;
    }
    if (!ep->wait && ep->wait_fd >= 0)
        lx_bell_attach(ep->wait_fd);
    return 0;
}

void fs_conn_close(fs_conn *c)
{
    pthread_mutex_lock(&c->lock);
    fail_pending(c);
    pthread_mutex_unlock(&c->lock);
    if (!c->ep.wait && c->ep.wait_fd >= 0)
        lx_bell_detach(c->ep.wait_fd);
    if (c->stop_fd >= 0) {
        /* Wakes a poller still sleeping; the caller waits for its calls to return. */
        uint64_t one = 1;
        if (write(c->stop_fd, &one, sizeof one) != sizeof one) {
            /* nothing to wake then */
        }
        close(c->stop_fd);
    }
    c->stop_fd = -1;
    free(c->page_used);
    free(c->run_pages);
    c->page_used = NULL;
    c->run_pages = NULL;
}

/* ---- share-region allocator: first fit over pages ---- */

static void *alloc_pages(fs_conn *c, size_t size, bool wait)
{
    uint32_t want = (uint32_t)((size + FS_CONN_PAGE - 1) / FS_CONN_PAGE);
    if (want == 0)
        want = 1;
    if (want > c->page_count)
        return NULL;
    pthread_mutex_lock(&c->share_lock);
    for (;;) {
        uint32_t run = 0;
        for (uint32_t i = 0; i < c->page_count; i++) {
            if (c->page_used[i]) {
                run = 0;
                i += c->run_pages[i] - 1;
                continue;
            }
            if (++run == want) {
                uint32_t first = i + 1 - want;
                memset(&c->page_used[first], 1, want);
                c->run_pages[first] = want;
                pthread_mutex_unlock(&c->share_lock);
                return c->ep.share + (size_t)first * FS_CONN_PAGE;
            }
        }
        if (!wait) {
            pthread_mutex_unlock(&c->share_lock);
            return NULL;
        }
        /* Space comes back as calls complete: the server must know of them (then look
         * again: some may have come back meanwhile). */
        if (c->notify_owed) {
            pthread_mutex_unlock(&c->share_lock);
            pthread_mutex_lock(&c->lock);
            flush_notify(c);
            pthread_mutex_unlock(&c->lock);
            pthread_mutex_lock(&c->share_lock);
            continue;
        }
        pthread_cond_wait(&c->share_freed, &c->share_lock);
    }
}

void *fs_conn_alloc(fs_conn *c, size_t size) { return alloc_pages(c, size, true); }

void *fs_conn_try_alloc(fs_conn *c, size_t size) { return alloc_pages(c, size, false); }

void fs_conn_free(fs_conn *c, void *p)
{
    if (!p)
        return;
    uint32_t first = (uint32_t)(((uint8_t *)p - c->ep.share) / FS_CONN_PAGE);
    pthread_mutex_lock(&c->share_lock);
    memset(&c->page_used[first], 0, c->run_pages[first]);
    c->run_pages[first] = 0;
    pthread_cond_broadcast(&c->share_freed);
    pthread_mutex_unlock(&c->share_lock);
}

/* ---- calls ---- */

/* Caller holds c->lock: a free slot of the pending table (waiting for one), now in use. */
static uint32_t take_slot(fs_conn *c)
{
    AF_ASSERT(!c->ep.completed || c->pending < FS_CONN_MAX_PENDING); /* the caller's promise */
    if (c->pending == FS_CONN_MAX_PENDING)
        flush_notify(c);
    while (c->pending == FS_CONN_MAX_PENDING)
        pthread_cond_wait(&c->slot_free, &c->lock);
    uint32_t index = 0;
    while (index < c->slots_ready && c->slots[index].in_use)
        index++;
    fs_conn_slot *s = &c->slots[index];
    if (index == c->slots_ready) {
        memset(s, 0, sizeof *s);
        pthread_cond_init(&s->done_cond, NULL);
        c->slots_ready++;
    }
    s->in_use = true;
    s->done = false;
    s->generation++;
    c->pending++;
    c->calls++;
    if (c->pending > c->max_pending)
        c->max_pending = c->pending;
    return index;
}

fs_conn_ticket fs_conn_refuse(fs_conn *c, fs_status status)
{
    pthread_mutex_lock(&c->lock);
    uint32_t index = take_slot(c);
    fs_cmpl failed = {.id = slot_id(c, index), .status = status};
    complete_slot(c, index, &failed);
    if (c->ep.completed) {
        c->slots[index].refused = true;
        c->refused_count++;
    }
    pthread_mutex_unlock(&c->lock);
    return index;
}

fs_conn_ticket fs_conn_submit(fs_conn *c, fs_cmd *cmd)
{
    pthread_mutex_lock(&c->lock);
    uint32_t index = take_slot(c);
    cmd->id = slot_id(c, index);
    if (c->broken) {
        fs_cmpl failed = {.id = cmd->id, .status = FS_STATUS_IO_ERROR};
        complete_slot(c, index, &failed);
        if (c->ep.completed) {
            c->slots[index].refused = true;
            c->refused_count++;
        }
        pthread_mutex_unlock(&c->lock);
        return index;
    }
    fs_msg msg;
    memset(&msg, 0, sizeof msg);
    msg.cmd = *cmd;
    /* Never fails: at most FS_CONN_MAX_PENDING < FS_QUEUE_CAPACITY commands are queued. */
    fs_queue_produce(&c->commands, &msg, 1);
    c->notify_owed = !c->ep.notify;
    pthread_mutex_unlock(&c->lock);
    if (c->ep.notify)
        c->ep.notify(c->ep.event_ctx);
    return index;
}

/* Caller holds c->lock: hand slot t's completion out and free the slot. */
static void release_slot(fs_conn *c, fs_conn_ticket t, fs_cmpl *out)
{
    *out = c->slots[t].cmpl;
    free_slot(c, t);
}

void fs_conn_wait(fs_conn *c, fs_conn_ticket t, fs_cmpl *out)
{
    pthread_mutex_lock(&c->lock);
    wait_done(c, &c->slots[t]);
    release_slot(c, t, out);
    pthread_mutex_unlock(&c->lock);
}

uint32_t fs_conn_wait_any(fs_conn *c, const fs_conn_ticket *t, uint32_t n, fs_cmpl *out)
{
    pthread_mutex_lock(&c->lock);
    uint32_t i;
    for (;;) {
        for (i = 0; i < n && !c->slots[t[i]].done; i++)
            continue;
        if (i < n)
            break;
        flush_notify(c);
        if (c->polling) {
            /* Another thread polls and wakes waiters one slot at a time: wait for the first
             * ticket (still a completion of the set, if not the earliest). */
            wait_done(c, &c->slots[t[0]]);
            i = 0;
            break;
        }
        c->polling = true;
        pthread_mutex_unlock(&c->lock);
        poll_turn(c);
        pthread_mutex_lock(&c->lock);
        c->polling = false;
        /* Pass the poller's job on to a thread waiting in fs_conn_wait, if any. */
        for (uint32_t k = 0; c->waiters > 0 && k < c->slots_ready; k++) {
            if (c->slots[k].waiting && !c->slots[k].done) {
                pthread_cond_signal(&c->slots[k].done_cond);
                break;
            }
        }
    }
    release_slot(c, t[i], out);
    pthread_mutex_unlock(&c->lock);
    return i;
}

fs_status fs_conn_call(fs_conn *c, fs_cmd *cmd, uint64_t *data)
{
    fs_cmpl cmpl;
    fs_conn_wait(c, fs_conn_submit(c, cmd), &cmpl);
    if (data)
        *data = cmpl.data;
    return (fs_status)cmpl.status;
}
