/* Power cuts at every write (a sample; POWERCUT=full: all of them) on FAT16. */
#include "tests/powercut/powercut.h"

static const pc_image_spec spec = { .fat = 16, .kib = 16384, .sectors_per_cluster = 4 };

TEST(powercut_fat16_tree_copy) { pc_test_workload("tree_copy", &spec); }
TEST(powercut_fat16_small_files) { pc_test_workload("small_files", &spec); }
TEST(powercut_fat16_copy_times) { pc_test_workload("copy_times", &spec); }
TEST(powercut_fat16_append_fsync) { pc_test_workload("append_fsync", &spec); }
TEST(powercut_fat16_overwrite) { pc_test_workload("overwrite", &spec); }
TEST(powercut_fat16_truncate) { pc_test_workload("truncate", &spec); }
TEST(powercut_fat16_rename) { pc_test_workload("rename", &spec); }
TEST(powercut_fat16_churn) { pc_test_workload("churn", &spec); }
TEST(powercut_fat16_concurrent) { pc_test_workload("concurrent", &spec); }
TEST(powercut_fat16_background_sync) { pc_test_workload("background_sync", &spec); }
TEST(powercut_fat16_truncate_discard) { pc_test_workload("truncate_discard", &spec); }
TEST(powercut_fat16_free_reuse) { pc_test_workload("free_reuse", &spec); }
TEST(powercut_fat16_free_reuse_discard) { pc_test_workload("free_reuse_discard", &spec); }
TEST(powercut_fat16_concurrent_discard) { pc_test_workload("concurrent_discard", &spec); }
