#!/usr/bin/env python3
"""The deepest stack a fiber of asyncfat's server can reach, from GCC's call graphs.

  stack_depth.py ROOT LINKED FILE.ci...

Reads the .ci files `gcc -fcallgraph-info=su` writes (each function's frame in bytes and
the calls it makes) and prints the largest sum of frames along any call path from ROOT
(request_main: where every request's fiber starts), that path, and any cycle met (a cycle
is counted once). LINKED is a file naming, one a line, the functions the program links
(`nm` of the ELF): a call through a pointer (the server's command table, the engine's
vfs_ops, callbacks) is taken to reach any linked function that nothing calls directly,
which over-counts but never misses. sel4/bench_sel4.sh compares the bound with the
high-water marks measured by painting stacks, to choose the fiber stack size.
"""
import re
import sys

NODE = re.compile(r'node: \{ title: "([^"]+)" label: "[^"\\]*\\n([^":\\]*):[^"\\]*\\n(\d+) bytes')
EDGE = re.compile(r'edge: \{ sourcename: "([^"]+)" targetname: "([^"]+)"')


def load(files):
    frames, calls, where = {}, {}, {}
    for path in files:
        with open(path) as f:
            for line in f:
                m = NODE.match(line)
                if m:
                    frames[m.group(1)] = int(m.group(3))
                    where[m.group(1)] = m.group(2)
                    continue
                m = EDGE.match(line)
                if m:
                    calls.setdefault(m.group(1), set()).add(m.group(2))
    return frames, calls, where


INDIRECT = "__indirect_call"

# Where calls through pointers go: for a calling function (None: any) in a source file,
# the functions it may reach (by name, or every pointer-called function of a file, given
# as a path ending in ".c" or "/"). They are asyncfat's pointers: the server's command
# table, the engine's vfs_ops, the FAT engine's clock, the block layer's completion and
# notify callbacks, a new fiber's entry, the stack overflow handler. A call through a
# pointer that no rule covers may reach every pointer-called function, and is named in the
# output so that a rule gets written for it.
POINTER_RULES = [
    ("fs_server_execute", "server/commands.c", ["server/commands.c"]),
    (None, "server/commands.c", ["fat/fat_vfs.c"]),
    (None, "server/fds.c", ["fat/fat_vfs.c"]),
    ("fs_component_mounted", "server/fs_component.c", ["fv_mounted"]),
    ("fs_component_mount_report", "server/fs_component.c", ["fv_mounted"]),
    (None, "server/loop.c", ["client_notify"]),
    (None, "fat/fat_check", []),
    (None, "fat/", ["wall_clock"]),
    ("blk_client_process_responses", "blk/", ["write_behind_done"]),
    ("blk_client_end_pass", "blk/", ["driver_notify"]),
    ("task_main", "fiberpool/pool.c", ["request_main"]),
    ("ff_fiber_start", "fiberflow/fiberflow.c", ["task_main"]),
    (None, "fiberflow/fiberflow.c", ["stack_overflow"]),
]


def matches(spec, title, where):
    if spec.endswith(".c") or spec.endswith("/"):
        return spec in where.get(title, "")
    return title.split(":")[-1] == spec


def deepest(root, frames, calls, where, linked):
    # A static function is titled "file:name", an external one "name"; a call names its
    # target as the caller's file sees it, so match by name where the title is not known.
    by_name = {}
    for title in frames:
        by_name.setdefault(title.split(":")[-1], []).append(title)
    called = {t.split(":")[-1] for targets in calls.values() for t in targets}
    pointer_called = [t for t in frames if t.split(":")[-1] in linked and t.split(":")[-1] not in called]
    unruled = set()
    for caller in list(calls):
        if INDIRECT not in calls[caller]:
            continue
        name, path = caller.split(":")[-1], where.get(caller, "")
        rule = next((r for r in POINTER_RULES if (r[0] is None or r[0] == name) and r[1] in path), None)
        if rule is None:
            unruled.add(name)
        targets = [t for t in pointer_called if rule is None or any(matches(spec, t, where) for spec in rule[2])]
        node = INDIRECT + "@" + caller
        calls[caller] = (calls[caller] - {INDIRECT}) | {node}
        calls[node] = set(targets)
        frames[node] = 0
    cycles, memo = set(), {}

    def walk(title, on_path):
        if title in on_path:
            cycles.add(title.split(":")[-1])
            return 0, []
        if title in memo:
            return memo[title]
        best = (0, [])
        for callee in calls.get(title, ()):
            for target in ([callee] if callee in frames else by_name.get(callee.split(":")[-1], [])):
                found = walk(target, on_path | {title})
                if found[0] > best[0]:
                    best = found
        step = [] if title.startswith(INDIRECT) else [(title.split(":")[-1], frames.get(title, 0))]
        memo[title] = (frames.get(title, 0) + best[0], step + best[1])
        return memo[title]

    roots = by_name.get(root, [])
    if not roots:
        raise SystemExit("stack_depth.py: no function %s in the call graphs" % root)
    return max((walk(r, frozenset()) for r in roots), key=lambda x: x[0]), sorted(cycles), sorted(unruled)


def main():
    if len(sys.argv) < 4:
        raise SystemExit(__doc__)
    with open(sys.argv[2]) as f:
        linked = {line.strip() for line in f if line.strip()}
    frames, calls, where = load(sys.argv[3:])
    (total, path), cycles, unruled = deepest(sys.argv[1], frames, calls, where, linked)
    print("deepest %d bytes" % total)
    for name, size in path:
        print("  %6d %s" % (size, name))
    if cycles:
        print("cycles (counted once): %s" % ", ".join(cycles))
    if unruled:
        print("calls through pointers with no rule (taken to reach anything): %s" % ", ".join(unruled))


if __name__ == "__main__":
    main()
