# Benchmark group `report` (make bench-report): bench/report.sh runs bench/report_proto
# (the server against the raw driver on modelled devices), then the FUSE and copy-tool
# comparisons, and writes $(BUILD)/bench/report.csv and the plots (see BENCHMARKS.md).
BENCHES += report
PROGRAMS += bench/report_proto
bench/report_proto_SRCS := bench/report/report_proto.c bench/report/report_raw.c bench/report/report_work.c \
	bench/report/report_inthread.c bench/bench_client.c tests/support/blk_test_rig.c tests/support/blk_fixture.c
bench/report_proto_LDLIBS := $(URING_LDLIBS) -lm
