/* switch_<arch>.S built with FF_SAVE_FPU_CONTROL=1, for test_fiberflow_fpu. */
#define FF_SAVE_FPU_CONTROL 1
#if defined(__x86_64__)
#include "fiberflow/switch_x86_64.S"
#elif defined(__aarch64__)
#include "fiberflow/switch_aarch64.S"
#elif defined(__riscv)
#include "fiberflow/switch_riscv64.S"
#endif
