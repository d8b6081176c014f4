# The power-cut proof (issue 13): workloads cut at every write on FAT12, FAT16 and FAT32.
# make powercut runs every cut, with four lost-write variants per flush epoch and fsck.fat
# on every image. (Not yet in make test: the engine does not pass it yet.)
POWERCUT_SRCS := tests/powercut/pc_model.c tests/powercut/pc_replay.c tests/powercut/pc_workloads.c \
	fat/tests/fat_engine_test.c fat/tests/fat_test_tools.c tests/support/blk_fixture.c tests/harness.c
POWERCUT_TESTS := powercut_fat12 powercut_fat16 powercut_fat32
POWERCUT_BINS := $(addprefix $(BUILD)/san/tests/,$(POWERCUT_TESTS))

$(BUILD)/san/tests/powercut_fat%: $(patsubst %.c,$(BUILD)/san/%.o,tests/powercut/test_powercut_fat%.c $(POWERCUT_SRCS)) $(BUILD)/san/libasyncfat.a
	@mkdir -p $(@D)
	$(call quiet,LD,$@)
	$(Q)$(CC) $(SAN_FLAGS) -o $@ $^ $(URING_LDLIBS)

.PHONY: powercut
powercut: $(POWERCUT_BINS)
	@POWERCUT=full TEST_TIMEOUT=$${TEST_TIMEOUT:-7200} BUILD=$(BUILD) tests/run.sh $^
