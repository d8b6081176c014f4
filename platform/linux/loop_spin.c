#include "platform/linux/loop_spin.h"

void lx_spin_init(lx_spin *s, uint64_t budget_ns)
{
    s->budget_ns = budget_ns;
    s->idle_since = 0;
    s->armed = false;
}

uint64_t lx_spin_poll_until(lx_spin *s, uint64_t now, uint64_t deadline)
{
    s->idle_since = now;
    if (!s->armed || s->budget_ns == 0)
        return now;
    uint64_t until = s->budget_ns > UINT64_MAX - now ? UINT64_MAX : now + s->budget_ns;
    return until < deadline ? until : deadline;
}

void lx_spin_polled(lx_spin *s, bool found)
{
    if (!found)
        s->armed = false;
}

void lx_spin_woke(lx_spin *s, uint64_t now)
{
    s->armed = s->budget_ns > 0 && now - s->idle_since <= s->budget_ns;
}
