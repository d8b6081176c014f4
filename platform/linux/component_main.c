/* main() for a component built as its own program: the launcher passes the regions and
 * channels in LX_COMPONENT_ENV; the component's own component_init / component_notified
 * (platform/component.h) run in the Linux event loop. */
#include "platform/linux/runtime.h"

#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv)
{
    static lx_component_env env;
    lx_component_set_args(argc, argv);
    const char *text = getenv(LX_COMPONENT_ENV);
    if (!text || !lx_component_env_decode(&env, text)) {
        fprintf(stderr, "%s: a component; start it with the launcher (%s is %s)\n", argv[0], LX_COMPONENT_ENV,
                text ? "malformed" : "not set");
        return 2;
    }
    return lx_component_run(&env, (lx_component_entry){component_init, component_notified, NULL, NULL});
}
