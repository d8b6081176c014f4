/* report_work: see report_work.h. */
#include "bench/report/report_work.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static fs_buffer slot_path(bench_conn *c, uint32_t slot, const char *path)
{
    return bench_put(c, (uint64_t)slot * 512u, path, strlen(path));
}

static void fail(const char *what, const fs_cmpl *cmpl)
{
    fprintf(stderr, "bench: %s failed with status %llu\n", what, (unsigned long long)cmpl->status);
    exit(1);
}

static bool io_issue(void *ctx, bench_conn *c, uint32_t slot)
{
    io_work *w = ctx;
    uint64_t fd, offset;
    if (w->sequential) {
        if (w->cursor + w->io_bytes > w->file_bytes) {
            if (!w->wrap)
                return false;
            w->cursor = 0;
        }
        fd = w->fds[0];
        offset = w->cursor;
        w->cursor += w->io_bytes;
    } else {
        fd = w->fds[bench_rand(&w->rng) % w->file_count];
        offset = (bench_rand(&w->rng) % (w->file_bytes / w->io_bytes)) * w->io_bytes;
    }
    fs_buffer buf = {REPORT_DATA_BASE + (uint64_t)slot * w->io_bytes, w->io_bytes};
    fs_cmd_params p;
    if (w->type == FS_CMD_FILE_READ)
        p = (fs_cmd_params){.file_read = {fd, offset, buf}};
    else
        p = (fs_cmd_params){.file_write = {fd, offset, buf}};
    bench_submit(c, w->type, &p, sizeof p, slot);
    return true;
}

static bool io_complete(void *ctx, bench_conn *c, uint32_t slot, const fs_cmpl *cmpl)
{
    io_work *w = ctx;
    if (cmpl->status != FS_STATUS_SUCCESS || cmpl->data != w->io_bytes)
        fail(w->type == FS_CMD_FILE_READ ? "read" : "write", cmpl);
    return true;
}

bench_work io_work_bind(io_work *w)
{
    if (!w->rng)
        w->rng = 0x9e3779b97f4a7c15ull;
    return (bench_work){io_issue, io_complete, w};
}

static bool meta_issue(void *ctx, bench_conn *c, uint32_t slot)
{
    meta_work *w = ctx;
    if (w->next >= w->count)
        return false;
    char path[128];
    snprintf(path, sizeof path, "%s/f%05u", w->dir, w->next++);
    fs_buffer buf = slot_path(c, slot, path);
    fs_cmd_params p;
    memset(&p, 0, sizeof p);
    switch (w->op) {
    case META_CREATE:
        p.file_open.path = buf;
        p.file_open.flags = FS_OPEN_FLAGS_WRITE_ONLY | FS_OPEN_FLAGS_CREATE | FS_OPEN_FLAGS_EXCLUSIVE;
        bench_submit(c, FS_CMD_FILE_OPEN, &p, sizeof p, slot);
        break;
    case META_STAT:
        p.stat.path = buf;
        p.stat.buf = (fs_buffer){(uint64_t)slot * 512u + 256u, sizeof(fs_stat)};
        bench_submit(c, FS_CMD_STAT, &p, sizeof p, slot);
        break;
    case META_REMOVE:
        p.file_remove.path = buf;
        bench_submit(c, FS_CMD_FILE_REMOVE, &p, sizeof p, slot);
        break;
    }
    return true;
}

/* A create is open, then (with file_bytes) a write from the slot's data buffer, then close. */
static bool meta_complete(void *ctx, bench_conn *c, uint32_t slot, const fs_cmpl *cmpl)
{
    meta_work *w = ctx;
    static const char *const names[] = {"create", "stat", "remove"};
    static const char *const steps[] = {"create", "write", "close"};
    if (cmpl->status != FS_STATUS_SUCCESS)
        fail(w->op == META_CREATE ? steps[w->step[slot]] : names[w->op], cmpl);
    if (w->op != META_CREATE || w->step[slot] == 2) {
        w->step[slot] = 0;
        return true;
    }
    fs_cmd_params p;
    if (w->step[slot] == 0) {
        w->fd[slot] = cmpl->data;
        w->step[slot] = w->file_bytes ? 1 : 2;
    } else {
        w->step[slot] = 2;
    }
    if (w->step[slot] == 1) {
        uint32_t n = w->file_bytes < 4096 ? w->file_bytes : 4096;
        fs_buffer buf = bench_put(c, REPORT_DATA_BASE + (uint64_t)slot * 4096u, NULL, n);
        memset(c->ep->share + buf.offset, 'a' + (int)(slot % 26), n);
        p = (fs_cmd_params){.file_write = {w->fd[slot], 0, buf}};
        bench_submit(c, FS_CMD_FILE_WRITE, &p, sizeof p, slot);
    } else {
        p = (fs_cmd_params){.file_close = {w->fd[slot]}};
        bench_submit(c, FS_CMD_FILE_CLOSE, &p, sizeof p, slot);
    }
    return false;
}

bench_work meta_work_bind(meta_work *w)
{
    return (bench_work){meta_issue, meta_complete, w};
}

uint64_t report_open(bench_conn *c, const char *path, uint64_t flags)
{
    fs_cmd_params p = {.file_open = {slot_path(c, 0, path), flags}};
    return bench_call_ok(c, FS_CMD_FILE_OPEN, &p, sizeof p, path);
}

void report_close(bench_conn *c, uint64_t fd)
{
    fs_cmd_params p = {.file_close = {fd}};
    bench_call_ok(c, FS_CMD_FILE_CLOSE, &p, sizeof p, "close");
}

void report_mkdir(bench_conn *c, const char *path)
{
    fs_cmd_params p = {.dir_create = {slot_path(c, 0, path)}};
    bench_call_ok(c, FS_CMD_DIR_CREATE, &p, sizeof p, path);
}

void report_sync(bench_conn *c, uint64_t fd)
{
    fs_cmd_params p = {.file_sync = {fd}};
    bench_call_ok(c, FS_CMD_FILE_SYNC, &p, sizeof p, "sync");
}
