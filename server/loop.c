/* The server's event loop: taking commands, spawning request tasks, publishing
 * completions, and notifying each peer at most once per pass. */
#include "server/server_internal.h"

_Static_assert(offsetof(fs_server, client_count) == offsetof(fs_server, clients) + sizeof(((fs_server *)0)->clients),
               "fs_server_init clears all but clients[], which client_count follows");

void fs_server_init(fs_server *server, const fs_server_config *config)
{
    /* Not the client table (a quarter of a megabyte): each connection clears its own entry
     * as it is added, and nothing reads past client_count. A one-shot command would
     * otherwise fault in every page of it at start. */
    size_t clients_end = offsetof(fs_server, client_count);
    af_memset(server, 0, offsetof(fs_server, clients));
    af_memset((uint8_t *)server + clients_end, 0, sizeof(*server) - clients_end);
    server->pool = config->pool;
    server->blk = config->blk;
    server->engine = config->engine;
    server->writeback_ns = config->writeback_ns;
    server->clock_ns = config->clock_ns;
    server->clock_ctx = config->clock_ctx;
    fp_mutex_init(&server->mount_lock);
    for (uint32_t i = FS_SERVER_REQUESTS; i-- > 0;) {
        server->requests[i].server = server;
        server->requests[i].next = server->free_requests;
        server->free_requests = &server->requests[i];
    }
}

int fs_server_add_connection(fs_server *server, const fs_connection_config *config)
{
    if (server->client_count == FS_SERVER_MAX_CLIENTS)
        return -1;
    fs_connection *client = &server->clients[server->client_count];
    af_memset(client, 0, sizeof(*client));
    client->server = server;
    fs_queue_end_init(&client->commands, config->commands, false);
    fs_queue_end_init(&client->completions, config->completions, true);
    client->share = config->share;
    client->share_size = config->share_size;
    client->notify = config->notify;
    client->notify_ctx = config->notify_ctx;
    fp_queue_init(&client->drain_waiters);
    fs_fd_table_init(client);
    return (int)server->client_count++;
}

static void *request_main(void *arg)
{
    fs_request *req = arg;
    fs_connection *client = req->client;
    fs_server_execute(req);
    if (fs_command_changes(&req->cmd))
        fs_writeback_note_change(req->server);
    req->cmpl.id = req->cmd.id;
    req->next = NULL;
    if (client->done_tail)
        client->done_tail->next = req;
    else
        client->done_head = req;
    client->done_tail = req;
    client->in_flight--;
    if (client->in_flight <= client->draining)
        fp_wake_all(&client->drain_waiters, NULL);
    return NULL;
}

/* Take commands round robin, one per client per turn, while records and slots last. */
static uint32_t take_commands(fs_server *server)
{
    uint32_t taken = 0;
    uint32_t records = af_min_u32(FS_SERVER_REQUESTS, fp_slot_count(server->pool));
    uint32_t share = af_max_u32(records / af_max_u32(server->client_count, 1), 1);
    bool any = true;
    while (any) {
        any = false;
        for (uint32_t k = 0; k < server->client_count; k++) {
            if (!server->free_requests || fp_free_slots(server->pool) == 0)
                return taken;
            fs_connection *client = &server->clients[(server->next_client + k) % server->client_count];
            if (client->held >= share || fs_queue_available(&client->commands) == 0)
                continue;
            fs_request *req = server->free_requests;
            fs_msg msg;
            fs_queue_consume(&client->commands, &msg, 1);
            server->free_requests = req->next;
            req->cmd = msg.cmd;
            af_memset(&req->cmpl, 0, sizeof(req->cmpl));
            req->client = client;
            client->in_flight++;
            client->held++;
            fp_task *task = fp_spawn(server->pool, request_main, req);
            AF_ASSERT(task != NULL); /* a slot was free */
            taken++;
            any = true;
        }
        server->next_client = server->client_count ? (server->next_client + 1) % server->client_count : 0;
    }
    return taken;
}

/* Coalescing (the notify_threshold extension, for clients that opted in): a client that
 * asked for it is woken only when enough completions wait, or when nothing more is coming.
 * Others get LionsOS's notification after every batch, whatever their queue's padding. */
static bool wants_notification(const fs_connection *client)
{
    uint64_t threshold = af_load_relaxed(&client->completions.queue->notify_threshold);
    if (!client->extensions || threshold <= 1 || client->in_flight == 0)
        return true;
    return fs_queue_unread(&client->completions) >= af_min_u64(threshold, FS_QUEUE_CAPACITY);
}

/* Publish finished requests in completion order while the client's queue has room. */
static uint32_t publish_completions(fs_server *server, fs_connection *client)
{
    uint32_t published = 0;
    fs_msg batch[32];
    uint64_t space;
    /* In batches: one release store of the tail per batch, not per completion. */
    while (client->done_head && (space = fs_queue_space(&client->completions)) > 0) {
        uint32_t n = 0;
        while (client->done_head && n < space && n < AF_ARRAY_LEN(batch)) {
            fs_request *req = client->done_head;
            batch[n++].cmpl = req->cmpl; /* zeroed past its fields when the command was taken */
            client->done_head = req->next;
            req->next = server->free_requests;
            server->free_requests = req;
        }
        if (!client->done_head)
            client->done_tail = NULL;
        fs_queue_produce(&client->completions, batch, n);
        client->held -= n;
        published += n;
    }
    if (published && wants_notification(client))
        client->notify_needed = true;
    server->stats.completions += published;
    return published;
}

bool fs_server_notified(fs_server *server)
{
    bool did_anything = false;
    uint64_t progress;
    do {
        server->stats.passes++;
        progress = 0;
        if (server->blk)
            progress += blk_client_process_responses(server->blk);
        progress += fs_writeback_poll(server);
        uint32_t taken = take_commands(server);
        server->stats.commands += taken;
        progress += taken;
        progress += fp_run(server->pool);
        for (uint32_t i = 0; i < server->client_count; i++)
            progress += publish_completions(server, &server->clients[i]);
        did_anything |= progress != 0;
    } while (progress);

    for (uint32_t i = 0; i < server->client_count; i++) {
        fs_connection *client = &server->clients[i];
        if (client->notify_needed) {
            client->notify_needed = false;
            server->stats.client_notifications++;
            if (client->notify)
                client->notify(client->notify_ctx);
        }
    }
    if (server->blk)
        blk_client_end_pass(server->blk);
    return did_anything;
}

bool fs_server_idle(const fs_server *server)
{
    for (uint32_t i = 0; i < server->client_count; i++) {
        if (server->clients[i].in_flight || server->clients[i].done_head)
            return false;
    }
    return true;
}
