/* asyncfat as a Microkit protection domain: the platform (platform/component.h) over
 * libmicrokit, for the file-system server component (server/fs_component.h).
 *
 * The PD takes the place of LionsOS's FAT component: it reads .blk_client_config and
 * .fs_server_config (config.h), and its fiber stacks are the memory LionsOS maps for the
 * FAT PD's four worker stacks (setvar symbols worker_thread_stack_one .. _four, each
 * MK_WORKER_STACK_BYTES). An .asyncfat_config section, where the system writes one, adds
 * clients, names other stack memory (e.g. one mapping per fiber with guard gaps) and sets
 * the wall clock. A bad or missing configuration is reported on the debug console and
 * the PD then answers nothing: it touches no memory a configuration names until every
 * section it uses has passed its checks.
 *
 * Files: microkit_pd.c (entry points, configuration, regions, channels, notifications,
 * diagnostics), microkit_clock.c (time), microkit_stacks.c (fiber stacks),
 * microkit_blk_order.c (sDDF's BARRIER rule kept in the PD), microkit_timer.c (the
 * write-back deadline on an sDDF timer driver, when the system gives the PD one).
 */
#ifndef ASYNCFAT_PLATFORM_MICROKIT_PD_H
#define ASYNCFAT_PLATFORM_MICROKIT_PD_H

#include "base/base.h"
#include "fiberpool/fiberpool.h"
#include "platform/microkit/config.h"

/* LionsOS maps each of the FAT PD's four worker stacks as 256 KiB. */
#define MK_WORKER_STACK_BYTES 0x40000u

extern mk_asyncfat_config asyncfat_config;
/* True once .asyncfat_config passed its checks (a LionsOS system leaves it zero). */
bool mk_asyncfat_config_valid(void);

/* One line on the debug console in debug builds (ASYNCFAT_DEBUG), nothing in release. */
void mk_log(const char *message);

/* Clock (microkit_clock.c): call once in init. */
void mk_clock_init(void);

/* Timer (microkit_timer.c): mk_timer_init once in init; mk_timer_fired(channel) says whether
 * a notification is the timer's (the deadline the driver held has then passed);
 * mk_timer_arm(deadline) after every entry, with the component's next deadline. */
void mk_timer_init(void);
bool mk_timer_fired(unsigned channel);
void mk_timer_arm(uint64_t deadline);

#endif
