#!/usr/bin/env python3
"""Disk images for asyncfat's seL4 systems, made and checked with Linux's own FAT tools.

  disk.py make IMAGE
      An MBR disk with a FAT32 partition (partition 0, 64 MiB, mkfs.fat -F 32) and a FAT16
      one (partition 1, 32 MiB, mkfs.fat -F 16), each holding a /linux tree written with
      mtools: files named "...fill_<seed>_<size>.bin" (nested, long and Unicode names among
      them) with the test clients' fill pattern, and /linux/manifest.txt with their number.
  disk.py check IMAGE PARTITION LOG [--after-cut | --after-recovery]
      fsck.fat -n on the partition must find it clean (--after-cut: nothing but what
      docs/ORDERING.md says a cut may leave; --after-recovery, after asyncfat's next boot
      recovered and unmounted it: clean, as if never cut), and every file the log lists ("FILE <size> <seed> <path>",
      or "SYNCED ..." lines) reads back with mtools byte for byte. Prints PASS/FAIL lines.
  disk.py fill SEED SIZE
      The fill pattern on stdout (for debugging).

The fill pattern is sel4/clients/client_main.c's tc_fill: word w of the stream is
z = seed * 0x9E3779B97F4A7C15 + w; z = (z ^ z >> 29) * 0xBF58476D1CE4E5B9 (mod 2^64),
stored little-endian.
"""
import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile

MASK = (1 << 64) - 1
SECTOR = 512
PARTITIONS = [  # (start sector, sectors, MBR type, mkfs.fat FAT size)
    (2048, 131072, "c", 32),
    (133120, 65536, "6", 16),
]
DISK_BYTES = 100 * 1024 * 1024
LINUX_FILES = [  # (path under /linux, seed, size)
    ("fill_11_0.bin", 11, 0),
    ("fill_12_1.bin", 12, 1),
    ("fill_13_4096.bin", 13, 4096),
    ("fill_14_100000.bin", 14, 100000),
    ("big fill_15_1048583.bin", 15, 1048583),
    ("a/b/c/deep fill_16_70000.bin", 16, 70000),
    ("Gr\u00fc\u00dfe \u65e5\u672c\u8a9e fill_17_5000.bin", 17, 5000),
    ("a long name that needs many long-name entries in its directory, "
     "more than a hundred bytes of it fill_18_33333.bin", 18, 33333),
    ("huge fill_19_5242887.bin", 19, 5242887),
]
ENV = dict(os.environ, LANG="C.UTF-8", LC_ALL="C.UTF-8", MTOOLS_SKIP_CHECK="1")


def fill(seed, size):
    words = (size + 7) // 8
    out = bytearray(words * 8)
    base = seed * 0x9E3779B97F4A7C15 & MASK
    for w in range(words):
        z = (base + w) & MASK
        z = ((z ^ (z >> 29)) * 0xBF58476D1CE4E5B9) & MASK
        struct.pack_into("<Q", out, w * 8, z)
    return bytes(out[:size])


def run(cmd, **kw):
    return subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=ENV, **kw)


def must(cmd):
    r = run(cmd)
    if r.returncode != 0:
        raise SystemExit("%s failed:\n%s" % (" ".join(cmd), r.stdout))
    return r.stdout


def make(image):
    with open(image, "wb") as f:
        f.truncate(DISK_BYTES)
    table = "label: dos\n" + "".join("start=%d, size=%d, type=%s\n" % (s, n, t) for s, n, t, _ in PARTITIONS)
    r = subprocess.run(["sfdisk", "-q", image], input=table, text=True, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT)
    if r.returncode != 0:
        raise SystemExit("sfdisk: " + r.stdout)
    with tempfile.TemporaryDirectory() as tmp:
        for i, (start, sectors, _, fat) in enumerate(PARTITIONS):
            part = os.path.join(tmp, "part%d.img" % i)
            with open(part, "wb") as f:
                f.truncate(sectors * SECTOR)
            must(["mkfs.fat", "-F", str(fat), "-n", "ASYNCFAT%d" % i] + (["-s", "1"] if fat == 32 else []) + [part])
            must(["mmd", "-i", part, "::linux"])
            made = set()
            for path, seed, size in LINUX_FILES:
                parts = path.split("/")
                for k in range(1, len(parts)):
                    d = "/".join(parts[:k])
                    if d not in made:
                        must(["mmd", "-i", part, "::linux/" + d])
                        made.add(d)
                src = os.path.join(tmp, "data")
                with open(src, "wb") as f:
                    f.write(fill(seed, size))
                must(["mcopy", "-i", part, src, "::linux/" + path])
            manifest = os.path.join(tmp, "manifest.txt")
            with open(manifest, "w") as f:
                f.write("%d\n" % len(LINUX_FILES))
            must(["mcopy", "-i", part, manifest, "::linux/manifest.txt"])
            with open(part, "rb") as src, open(image, "r+b") as dst:
                dst.seek(start * SECTOR)
                shutil.copyfileobj(src, dst)


def extract(image, partition, out):
    start, sectors, _, _ = PARTITIONS[partition]
    with open(image, "rb") as src, open(out, "wb") as dst:
        src.seek(start * SECTOR)
        left = sectors * SECTOR
        while left:
            chunk = src.read(min(left, 1 << 20))
            dst.write(chunk)
            left -= len(chunk)


# fsck.fat -n's report, judged line by line. Always allowed: its banner, its summary and
# "Leaving filesystem unchanged". Straight after a cut (mode "cut"): what docs/ORDERING.md
# section 2 says a cut may leave before recovery, and nothing else: lost clusters, a stale
# second FAT, the dirty marks and FSInfo's unknown count, a chain longer than its file, and
# the two names of a rename caught between two blocks (fsck.fat truncates the second to 0
# bytes). After asyncfat's next boot (mode "recovered") its mount-time recovery and clean
# unmount must have left nothing at all: the same judgement as a volume never cut.
FSCK_FRAME = [r"^fsck\.fat ", r"^\s*$", r"^Leaving filesystem unchanged", r"^/\S*: \d+ files?, \d+/\d+ clusters$"]
FSCK_CUT = [
    r"^Reclaimed \d+ unused clusters?", r"^Free cluster summary wrong", r"^\s+Auto-correcting",
    r"^FATs differ but appear to be intact", r"^\s+Using first FAT", r"^Dirty bit is set",
    r"^\s+Automatically removing dirty bit", r"^Free cluster summary uninitialized",
]
FSCK_CUT_LONGER = r"^\s+File size is (\d+) bytes, cluster chain length is > (\d+) bytes\.$"
FSCK_CUT_RENAME = [r"^\s+share clusters\.$", r"^\s+Truncating second to 0 bytes\.$",
                   r"^\s+Invalid '\.\.' entry in the second slot"]
FSCK_CUT_TRUNCATE = r"^\s+Truncating file to \d+ bytes\.$"
FSCK_CUT_EMPTIED = r"^\s+File size is \d+ bytes, cluster chain length is 0 bytes\.$"


def fsck_unexplained(report, mode):
    """The lines of fsck.fat's report the mode does not allow."""
    allowed = FSCK_FRAME + (FSCK_CUT if mode == "cut" else [])
    bad = []
    shared = False  # a "share clusters" finding came first: its second name is emptied
    for line in report.splitlines():
        if any(re.search(p, line) for p in allowed):
            continue
        if mode == "cut":
            longer = re.search(FSCK_CUT_LONGER, line)
            if any(re.search(p, line) for p in FSCK_CUT_RENAME):
                shared = shared or "share clusters" in line
                continue
            if line.startswith("/") or re.search(FSCK_CUT_TRUNCATE, line):
                continue
            if longer and int(longer.group(1)) <= int(longer.group(2)):
                continue
            if shared and re.search(FSCK_CUT_EMPTIED, line):
                continue
        bad.append(line)
    return bad


def check(image, partition, log, mode):
    passed = failed = 0

    def result(ok, name, why=""):
        nonlocal passed, failed
        if ok:
            passed += 1
            print("PASS %s" % name)
        else:
            failed += 1
            print("FAIL %s: %s" % (name, why))

    with tempfile.TemporaryDirectory() as tmp:
        part = os.path.join(tmp, "part.img")
        extract(image, partition, part)
        r = run(["fsck.fat", "-n", part])
        bad = fsck_unexplained(r.stdout, mode)
        result(r.returncode in ((0, 1) if mode == "cut" else (0,)) and not bad, "fsck_%s_p%d" % (mode, partition),
               "fsck.fat -n (exit %d) says:\n%s" % (r.returncode, r.stdout))
        files = []
        with open(log, encoding="utf-8", errors="replace") as f:
            for line in f:
                m = re.search(r"\| (FILE|SYNCED) (\d+) (\d+) (/.*?)\r?$", line)
                if m:
                    files.append((m.group(4), int(m.group(3)), int(m.group(2))))
        good, why = 0, []
        for path, seed, size in files:
            out = os.path.join(tmp, "out")
            r = run(["mcopy", "-n", "-i", part, "::" + path, out])
            data = open(out, "rb").read() if r.returncode == 0 else None
            if data == fill(seed, size):
                good += 1
            elif len(why) < 5:
                why.append("%s: %s" % (path, r.stdout.strip() if data is None else
                                  "%d bytes, expected %d, first difference at %s" % (
                                      len(data), size, next((i for i, (a, b) in
                                                             enumerate(zip(data, fill(seed, size))) if a != b),
                                                            min(len(data), size)))))
            if os.path.exists(out):
                os.unlink(out)
        result(files and good == len(files), "linux_reads_back_p%d" % partition,
               "%d of %d files the clients wrote read back intact; %s" % (good, len(files), "; ".join(why)))
        print("files checked on partition %d: %d" % (partition, len(files)))
    return failed == 0


def main():
    a = sys.argv[1:]
    if len(a) == 2 and a[0] == "make":
        make(a[1])
    elif len(a) in (4, 5) and a[0] == "check":
        modes = {"--after-cut": "cut", "--after-recovery": "recovered"}
        if len(a) == 5 and a[4] not in modes:
            sys.exit(__doc__)
        ok = check(a[1], int(a[2]), a[3], modes[a[4]] if len(a) == 5 else "clean")
        sys.exit(0 if ok else 1)
    elif len(a) == 3 and a[0] == "fill":
        sys.stdout.buffer.write(fill(int(a[1]), int(a[2])))
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
