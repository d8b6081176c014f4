/* fiberflow.c built with FF_SAVE_FPU_CONTROL=1, for test_fiberflow_fpu (the library's own
 * copy is built without it). */
#define FF_SAVE_FPU_CONTROL 1
#include "fiberflow/fiberflow.c"
