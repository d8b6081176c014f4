/* The component model (after seL4 Microkit): what a component provides and what its
 * platform gives it. Freestanding-safe declarations only: portable code may include this.
 *
 * A component provides component_init(), called once before any notification, and
 * component_notified(channel), called for each notification on one of its channels (a
 * notification carries no data; several may arrive as one). Both run to completion on the
 * component's only thread, never nested.
 *
 * The platform provides the rest. Channels are small numbers local to the component (the
 * Microkit channel ids, 0..62); regions are shared memory named in the system description.
 * On Microkit a generated table maps names to the setvar symbols and channel ids; on Linux
 * the launcher passes them to each process (platform/linux/runtime.h).
 */
#ifndef ASYNCFAT_PLATFORM_COMPONENT_H
#define ASYNCFAT_PLATFORM_COMPONENT_H

#include "base/base.h"
#include "fiberpool/fiberpool.h"

#define COMPONENT_MAX_CHANNELS 63u
#define COMPONENT_NO_CHANNEL 0xffffffffu
/* Not a channel: component_notified(COMPONENT_TIMER_CHANNEL) is the platform's timer
 * firing for a component that asked for a deadline (server/fs_component.h). */
#define COMPONENT_TIMER_CHANNEL 63u

/* Provided by the component. */
void component_init(void);
void component_notified(unsigned channel);

/* Signal the peer on `channel`. Cheap; several notifies before the peer runs may be seen
 * as one. An unknown channel is ignored. */
void component_notify(unsigned channel);

/* The shared region called `name` (NULL if this component has none by that name); its
 * size in bytes goes to *size when size is not NULL. */
void *component_region(const char *name, size_t *size);

/* The channel called `name` in the system description, or COMPONENT_NO_CHANNEL. */
unsigned component_channel(const char *name);

/* One line of diagnostics (no newline needed), prefixed with the component's name. */
void component_log(const char *message);

/* Monotonic time in nanoseconds. */
uint64_t component_time_ns(void);

/* Wall-clock time, Unix seconds (file timestamps). */
int64_t component_wall_time(void);

/* Memory for up to `slots` fiber stacks of at least `stack_size` bytes each, as fiberpool
 * areas in areas[0 .. *area_count), *area_count <= max_areas. Returns the number of stacks
 * given: fewer than asked where the system maps less memory for them, 0 if none. Linux maps
 * one area with a PROT_NONE guard page below every stack; Microkit hands out the memory
 * its system description maps for stacks, with guards where that leaves unmapped gaps. */
uint32_t component_fiber_stacks(uint32_t slots, size_t stack_size, fp_stack_area *areas, uint32_t max_areas,
                                uint32_t *area_count);

#endif
