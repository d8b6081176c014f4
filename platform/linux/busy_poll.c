#include "platform/linux/busy_poll.h"

void lx_busy_poll_init(lx_busy_poll *s, uint64_t budget_ns)
{
    s->budget_ns = budget_ns;
    s->idle_since = 0;
    s->armed = false;
}

uint64_t lx_busy_poll_until(lx_busy_poll *s, uint64_t now, uint64_t deadline)
{
    s->idle_since = now;
    if (!s->armed || s->budget_ns == 0)
        return now;
    uint64_t until = s->budget_ns > UINT64_MAX - now ? UINT64_MAX : now + s->budget_ns;
    return until < deadline ? until : deadline;
}

void lx_busy_poll_found(lx_busy_poll *s, bool found)
{
    if (!found)
        s->armed = false;
}

void lx_busy_poll_woke(lx_busy_poll *s, uint64_t now)
{
    s->armed = s->budget_ns > 0 && now - s->idle_since <= s->budget_ns;
}
