# Fuzzing (issue 19): libFuzzer targets (clang, ASan + UBSan) on the boot sector and mount,
# directory and long-name parsing, the checker and repair, and the server's command
# handling from a hostile client; the image mutator, which damages images made at test
# time and drives the asyncfat command (build/san/asyncfat); and the saved reproductions,
# fuzz/recipes/*.recipe (mutation recipes, never images).
#   make fuzz               every target for FUZZ_SECONDS (default 60), then the mutator
#   make fuzz-<target>      one of them: fuzz-bpb, fuzz-dir, fuzz-check, fuzz-server, fuzz-imgmut,
#                           fuzz-imgmut-walkers (cycles and deep trees for the tree walkers)
#   make fuzz-coverage      line coverage of fat/ and server/ reached by the corpora
# Corpora are made at run time (imgmut corpus) under $(BUILD)/fuzz/corpus, never committed.
# make test runs fuzz/tests/test_fuzz.sh: every recipe and a few seconds of each target.

FUZZ_TARGETS := bpb dir check server
FUZZ_SECONDS ?= 60
FUZZ_BINS := $(addprefix $(BUILD)/fuzz/fuzz_,$(FUZZ_TARGETS))
IMGMUT := $(BUILD)/san/fuzz/imgmut
IMGMUT_SRCS := fuzz/imgmut.c fuzz/imgmut_exec.c fuzz/imgmut_campaign.c fuzz/fz_image.c fuzz/fz_proc.c fuzz/fz_seed.c \
	fuzz/fz_recipe.c fuzz/fz_template.c
TEST_SCRIPTS += fuzz/tests/test_san_build.sh fuzz/tests/test_fuzz.sh

.PHONY: fuzz-build fuzz-cov-build fuzz fuzz-coverage $(addprefix fuzz-,$(FUZZ_TARGETS)) fuzz-imgmut fuzz-imgmut-walkers
test-build: fuzz-build

FUZZ_SUBMAKE = $(MAKE) --no-print-directory -f fuzz/build.mk BUILD=$(BUILD) V=$(V) \
	FUZZ_TARGETS="$(FUZZ_TARGETS)" FUZZ_LIB_SRCS="$(LIB_SRCS)" FUZZ_COMMON_CFLAGS="$(COMMON_CFLAGS)"

fuzz-build: $(IMGMUT) $(BUILD)/san/asyncfat
	+@$(FUZZ_SUBMAKE)
fuzz-cov-build:
	+@$(FUZZ_SUBMAKE) FLAVOUR=fuzzcov

$(IMGMUT): $(patsubst %.c,$(BUILD)/san/%.o,$(IMGMUT_SRCS))
	@mkdir -p $(@D)
	$(call quiet,LD,$@)
	$(Q)$(CC) $(SAN_FLAGS) -o $@ $^

fuzz: deps fuzz-build
	@BUILD=$(BUILD) FUZZ_SECONDS=$(FUZZ_SECONDS) fuzz/run.sh $(FUZZ_TARGETS) imgmut imgmut-walkers
$(addprefix fuzz-,$(FUZZ_TARGETS) imgmut imgmut-walkers): fuzz-%: deps fuzz-build
	@BUILD=$(BUILD) FUZZ_SECONDS=$(FUZZ_SECONDS) fuzz/run.sh $*
fuzz-coverage: deps fuzz-build fuzz-cov-build
	@BUILD=$(BUILD) fuzz/coverage.sh $(FUZZ_TARGETS)
