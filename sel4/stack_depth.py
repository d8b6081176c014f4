#!/usr/bin/env python3
"""The deepest stack a fiber of asyncfat's server can reach, from GCC's call graphs.

  stack_depth.py ROOT FILE.ci...

Reads the .ci files `gcc -fcallgraph-info=su` writes (each function's frame in bytes and
the calls it makes) and prints the largest sum of frames along any call path from ROOT
(request_main: where every request's fiber starts), that path, and any cycle met (a cycle
is counted once). Calls through function pointers are not in the graph; in the server's
fibers only the wall clock is one (a few bytes). sel4/bench_sel4.sh compares the bound
with the high-water marks measured by painting stacks, to choose the fiber stack size.
"""
import re
import sys

NODE = re.compile(r'node: \{ title: "([^"]+)" label: "[^"\\]*\\n[^"\\]*\\n(\d+) bytes')
EDGE = re.compile(r'edge: \{ sourcename: "([^"]+)" targetname: "([^"]+)"')


def load(files):
    frames, calls = {}, {}
    for path in files:
        with open(path) as f:
            for line in f:
                m = NODE.match(line)
                if m:
                    frames[m.group(1)] = int(m.group(2))
                    continue
                m = EDGE.match(line)
                if m:
                    calls.setdefault(m.group(1), set()).add(m.group(2))
    return frames, calls


def deepest(root, frames, calls):
    # A static function is titled "file:name", an external one "name"; a call names its
    # target as the caller's file sees it, so match by name where the title is not known.
    by_name = {}
    for title in frames:
        by_name.setdefault(title.split(":")[-1], []).append(title)
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
        memo[title] = (frames.get(title, 0) + best[0], [(title.split(":")[-1], frames.get(title, 0))] + best[1])
        return memo[title]

    roots = by_name.get(root, [])
    if not roots:
        raise SystemExit("stack_depth.py: no function %s in the call graphs" % root)
    return max((walk(r, frozenset()) for r in roots), key=lambda x: x[0]), sorted(cycles)


def main():
    if len(sys.argv) < 3:
        raise SystemExit(__doc__)
    frames, calls = load(sys.argv[2:])
    (total, path), cycles = deepest(sys.argv[1], frames, calls)
    print("deepest %d bytes" % total)
    for name, size in path:
        print("  %6d %s" % (size, name))
    if cycles:
        print("cycles (counted once): %s" % ", ".join(cycles))


if __name__ == "__main__":
    main()
