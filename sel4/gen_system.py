#!/usr/bin/env python3
"""Write a Microkit system around asyncfat: the .system file and every PD's configuration.

sDDF's own generator (sdfgen) needs a newer Microkit than the SDK here, so asyncfat brings
its own, for its test and benchmark systems. From a short description (JSON, below) and a
board it lays out the whole system:

  serial_driver, serial_virt_tx       sDDF serial (the test clients print through it, so
                                      release builds report too)
  blk_driver, blk_virt                sDDF virtio block driver and block virtualiser; each
                                      file-system PD is one virtualiser client (a partition)
  <fs name>                           asyncfat.elf, configured as LionsOS configures its FAT
                                      PD: .blk_client_config, .fs_server_config, worker stacks
                                      at 0xA0000000.. (setvar); more clients and guarded
                                      stacks through .asyncfat_config
  <client name>                       a test client (sel4/clients): .fs_client_config,
                                      .serial_client_config, .test_client_config
  timer_driver                        sDDF's timer driver (arm generic timer, goldfish RTC),
                                      when a file system asks for "timer": its write-back
                                      deadline is armed there (.timer_client_config)

Every configuration struct is written as a C initializer against the very headers the PDs
are built with (sDDF's for its PDs, platform/microkit/config.h and sel4/clients/
test_config.h for ours), compiled by the PD compiler, and cut out of the object with
objcopy: the compiler lays the bytes out, so a blob cannot disagree with the struct its PD
reads (sel4/layout_check.c also pins our structs against sDDF's headers). Each PD gets its
own copy of its ELF with its sections replaced (objcopy --update-section).

Description (sizes take K/M suffixes):
  {"name": "basic",
   "fs": [{"name": "asyncfat", "partition": 0, "stacks": "lionsos" | "guarded", "timer": false,
           "fibers": 48, "stack_size": "24K", "blk_data": "2M", "blk_queue": 128,
           "clients": [{"name": "client0", "roles": ["workload", ...], "dir": "/c0",
                        "shared_dir": "/shared", "share": "64M", "seed": 1,
                        "dialect": "lionsos" | "asyncfat"}]}]}
A file system with one client and "lionsos" stacks has exactly the configuration LionsOS
gives its FAT PD; its .asyncfat_config stays zero unless `wall_clock` is asked for.

Usage: gen_system.py --board B --description D.json --output DIR --search-path ELFDIR
                     --cc CC --objcopy OBJCOPY --cflags "..." [--wall-clock SECONDS]
Writes DIR/<name>.system, DIR/<name>.clients (the client PD names), DIR/<name>_configs.c,
and DIR/<pd>.elf for every PD.
"""
import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time

PAGE = 0x1000
LARGE = 0x200000

# What the boards' device trees (sDDF dts/) say about the devices the system drives, and
# where physical memory for DMA regions is free (below the kernel's memory on aarch64).
BOARDS = {
    "qemu_virt_aarch64": {
        "arch": "aarch64",
        "blk": {"paddr": 0xA000200, "irq": 49, "trigger": "edge"},        # virtio-mmio slot 1
        "serial": {"paddr": 0x9000000, "irq": 33, "trigger": "level",     # pl011
                   "driver": "serial_driver.elf"},
        "timer": {"paddr": None, "irq": 30, "trigger": "level"},          # generic timer, PPI 14
        "dma_top": 0x60000000,
    },
    "qemu_virt_riscv64": {
        "arch": "riscv64",
        "blk": {"paddr": 0x10002000, "irq": 2, "trigger": None},          # virtio-mmio slot 1
        "serial": {"paddr": 0x10000000, "irq": 10, "trigger": None,       # ns16550a
                   "driver": "serial_driver.elf"},
        "timer": {"paddr": 0x101000, "irq": 11, "trigger": None},         # goldfish RTC
        "dma_top": 0xA0000000,
    },
}

LIONS_WORKER_STACKS = [("one", 0xA0000000), ("two", 0xB0000000), ("three", 0xC0000000), ("four", 0xD0000000)]
LIONS_WORKER_STACK_BYTES = 0x40000
GUARDED_STACKS_AT = 0xA0000000
GUARD_GAP = 0x10000  # below every guarded stack: more than any one frame of asyncfat's
FS_QUEUE_BYTES = 0x8000
FS_QUEUE_LEN = 512  # what LionsOS's generator writes
SERIAL_QUEUE_BYTES = 0x1000
SERIAL_DATA_BYTES = 0x10000
BLK_DRIVER_QUEUE = 256
BLK_VIRT_DRIVER_DATA = 16 * PAGE
MAX_EXTRA_CLIENTS = 7  # platform/microkit/config.h MK_ASYNCFAT_MAX_EXTRA_CLIENTS

ROLES = ["workload", "linux_files", "bad_inputs", "pair", "crash_writer", "crash_check", "bench", "idle_writer"]
DIALECTS = ["lionsos", "asyncfat"]  # sel4/clients/test_config.h TC_DIALECT_*

# A PD may only ppcall one of higher priority: the timer driver is above the file systems.
PRIORITY = {"serial_driver": 250, "serial_virt_tx": 249, "timer_driver": 245, "blk_driver": 240, "blk_virt": 239,
            "fs": 200, "client": 100}


def size_of(value):
    if isinstance(value, int):
        return value
    m = re.fullmatch(r"\s*(\d+)\s*([KMG]?)\s*", str(value))
    if not m:
        raise SystemExit("bad size %r" % value)
    return int(m.group(1)) << {"": 0, "K": 10, "M": 20, "G": 30}[m.group(2)]


def round_up(n, align):
    return (n + align - 1) // align * align


# ---- the system model ----------------------------------------------------------------------

class Region:
    def __init__(self, name, size, paddr=None):
        self.name = name
        self.page = LARGE if size % LARGE == 0 and size >= LARGE else PAGE
        self.size = round_up(size, self.page)
        self.paddr = paddr


class Pd:
    def __init__(self, name, program, priority, stack_size=None):
        self.name, self.program, self.priority, self.stack_size = name, program, priority, stack_size
        self.maps = []        # (region, vaddr, perms, cached, setvar)
        self.irqs = []        # (irq, id, trigger)
        self.next_vaddr = 0x20000000
        self.next_id = 0
        self.sections = {}    # ELF section -> C initializer of its struct (type, body)

    def map(self, region, perms="rw", cached=True, vaddr=None, setvar=None):
        if vaddr is None:
            vaddr = round_up(self.next_vaddr, region.page)
            self.next_vaddr = vaddr + region.size
        self.maps.append((region, vaddr, perms, cached, setvar))
        return vaddr

    def channel_id(self):
        if self.next_id > 61:
            raise SystemExit("%s: out of channel ids" % self.name)
        self.next_id += 1
        return self.next_id - 1


class System:
    def __init__(self, board):
        self.board = BOARDS[board]
        self.regions, self.pds, self.channels = [], [], []
        self.dma_top = self.board["dma_top"]

    def region(self, name, size, paddr=None):
        r = Region(name, size, paddr)
        self.regions.append(r)
        return r

    def dma_region(self, name, size):
        """Physically contiguous memory the device reaches: allocated downwards."""
        size = round_up(size, PAGE)
        self.dma_top = (self.dma_top - size) // LARGE * LARGE if size % LARGE == 0 else self.dma_top - size
        return self.region(name, size, self.dma_top)

    def pd(self, name, program, priority, stack_size=None):
        p = Pd(name, program, priority, stack_size)
        self.pds.append(p)
        return p

    def connect(self, a, b, b_calls=False):
        """A channel; with b_calls, b may also ppcall a (a must have the higher priority)."""
        ia, ib = a.channel_id(), b.channel_id()
        self.channels.append((a, ia, b, ib, b_calls))
        return ia, ib

    def shared(self, name, size, a, a_perms, b, b_perms, cached=True):
        """A region mapped into two PDs; returns its (vaddr in a, vaddr in b, region)."""
        r = self.region(name, size)
        return a.map(r, a_perms, cached), b.map(r, b_perms, cached), r

    def render(self):
        out = ['<?xml version="1.0" encoding="UTF-8"?>',
               "<!-- written by asyncfat's sel4/gen_system.py -->", "<system>"]
        for r in self.regions:
            attrs = 'name="%s" size="0x%x"' % (r.name, r.size)
            if r.page != PAGE:
                attrs += ' page_size="0x%x"' % r.page
            if r.paddr is not None:
                attrs += ' phys_addr="0x%x"' % r.paddr
            out.append("    <memory_region %s />" % attrs)
        for p in self.pds:
            attrs = 'name="%s" priority="%d"' % (p.name, p.priority)
            if p.stack_size:
                attrs += ' stack_size="0x%x"' % p.stack_size
            out.append("    <protection_domain %s>" % attrs)
            out.append('        <program_image path="%s.elf" />' % p.name)
            for r, vaddr, perms, cached, setvar in p.maps:
                attrs = 'mr="%s" vaddr="0x%x" perms="%s"' % (r.name, vaddr, perms)
                if not cached:
                    attrs += ' cached="false"'
                if setvar:
                    attrs += ' setvar_vaddr="%s"' % setvar
                out.append("        <map %s />" % attrs)
            for irq, ident, trigger in p.irqs:
                attrs = 'irq="%d" id="%d"' % (irq, ident)
                if trigger:
                    attrs += ' trigger="%s"' % trigger
                out.append("        <irq %s />" % attrs)
            out.append("    </protection_domain>")
        for a, ia, b, ib, b_calls in self.channels:
            out.append("    <channel>")
            out.append('        <end pd="%s" id="%d" />' % (a.name, ia))
            out.append('        <end pd="%s" id="%d"%s />' % (b.name, ib, ' pp="true"' if b_calls else ""))
            out.append("    </channel>")
        out.append("</system>")
        return "\n".join(out) + "\n"


# ---- C initializers ------------------------------------------------------------------------

def c_region(vaddr, size):
    return "{ .vaddr = (void *)0x%xul, .size = 0x%xul }" % (vaddr, size)


def c_bytes(data):
    return "{ " + ", ".join("0x%02x" % b for b in data) + " }"


def c_string(text):
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def c_device_resources(regions, irq_ids):
    """sDDF device_resources_t: [(vaddr, size, io_addr)], [irq channel ids]."""
    regs = ", ".join("{ .region = %s, .io_addr = 0x%xul }" % (c_region(v, s), io) for v, s, io in regions)
    irqs = ", ".join("{ .id = %d }" % i for i in irq_ids)
    return ("device_resources_t", "{ .magic = %s, .num_regions = %d, .num_irqs = %d, .regions = { %s }, "
            ".irqs = { %s } }" % (c_bytes(b"sDDF\x01"), len(regions), len(irq_ids), regs, irqs))


def c_blk_connection(storage, req, resp, num_buffers, ident):
    return ("{ .storage_info = %s, .req_queue = %s, .resp_queue = %s, .num_buffers = %d, .id = %d }"
            % (c_region(*storage), c_region(*req), c_region(*resp), num_buffers, ident))


def c_serial_connection(queue, data, ident):
    return "{ .queue = %s, .data = %s, .id = %d }" % (c_region(*queue), c_region(*data), ident)


def c_fs_connection(cmd, cmpl, share, ident):
    return ("{ .command_queue = %s, .completion_queue = %s, .share = %s, .queue_len = %d, .id = %d }"
            % (c_region(*cmd), c_region(*cmpl), c_region(*share), FS_QUEUE_LEN, ident))


# ---- building the system -------------------------------------------------------------------

def build(board, desc, wall_clock):
    sysm = System(board)
    b = sysm.board
    blk_q = lambda n: (round_up(16 + 32 * n, PAGE), round_up(8 + 12 * n, PAGE))

    serial_driver = sysm.pd("serial_driver", b["serial"]["driver"], PRIORITY["serial_driver"])
    serial_virt = sysm.pd("serial_virt_tx", "serial_virt_tx.elf", PRIORITY["serial_virt_tx"])
    blk_driver = sysm.pd("blk_driver", "blk_driver.elf", PRIORITY["blk_driver"], stack_size=0x2000)
    blk_virt = sysm.pd("blk_virt", "blk_virt.elf", PRIORITY["blk_virt"], stack_size=0x2000)

    # -- block driver: its device, and its connection to the virtualiser
    blk_page = b["blk"]["paddr"] & ~(PAGE - 1)
    regs = sysm.region("virtio_blk_regs", PAGE, blk_page)
    headers = sysm.dma_region("virtio_blk_headers", 0x10000)
    metadata = sysm.dma_region("virtio_blk_metadata", 0x200000)
    v_regs = blk_driver.map(regs, cached=False)
    v_headers = blk_driver.map(headers, cached=False)
    v_meta = blk_driver.map(metadata, cached=False)
    irq_id = blk_driver.channel_id()
    blk_driver.irqs.append((b["blk"]["irq"], irq_id, b["blk"]["trigger"]))
    blk_driver.sections[".device_resources"] = c_device_resources(
        [(v_regs + (b["blk"]["paddr"] - blk_page), PAGE - (b["blk"]["paddr"] - blk_page), regs.paddr
          + (b["blk"]["paddr"] - blk_page)), (v_headers, headers.size, headers.paddr),
         (v_meta, metadata.size, metadata.paddr)], [irq_id])
    req_bytes, resp_bytes = blk_q(BLK_DRIVER_QUEUE)
    d_si, v_si, si = sysm.shared("blk_driver_storage_info", PAGE, blk_driver, "rw", blk_virt, "r")
    d_rq, v_rq, rq = sysm.shared("blk_driver_requests", req_bytes, blk_driver, "rw", blk_virt, "rw")
    d_rs, v_rs, rs = sysm.shared("blk_driver_responses", resp_bytes, blk_driver, "rw", blk_virt, "rw")
    virt_data = sysm.dma_region("blk_virt_driver_data", BLK_VIRT_DRIVER_DATA)
    v_vd = blk_virt.map(virt_data)
    virt_drv_id, drv_virt_id = sysm.connect(blk_virt, blk_driver)
    blk_driver.sections[".blk_driver_config"] = ("blk_driver_config_t", "{ .magic = %s, .virt = %s }" % (
        c_bytes(b"sDDF\x02"), c_blk_connection((d_si, si.size), (d_rq, rq.size), (d_rs, rs.size),
                                                BLK_DRIVER_QUEUE, drv_virt_id)))
    virt_driver = "{ .conn = %s, .data = { .region = %s, .io_addr = 0x%xul } }" % (
        c_blk_connection((v_si, si.size), (v_rq, rq.size), (v_rs, rs.size), BLK_DRIVER_QUEUE, virt_drv_id),
        c_region(v_vd, virt_data.size), virt_data.paddr)
    virt_clients = []

    # -- serial: driver, tx virtualiser; clients connect below
    serial_page = b["serial"]["paddr"] & ~(PAGE - 1)
    uart = sysm.region("uart_regs", PAGE, serial_page)
    v_uart = serial_driver.map(uart, cached=False)
    uart_irq = serial_driver.channel_id()
    serial_driver.irqs.append((b["serial"]["irq"], uart_irq, b["serial"]["trigger"]))
    serial_driver.sections[".device_resources"] = c_device_resources(
        [(v_uart + (b["serial"]["paddr"] - serial_page), PAGE, uart.paddr + (b["serial"]["paddr"] - serial_page))],
        [uart_irq])

    def serial_connection(name, server, client):
        s_q, c_q, q = sysm.shared("serial_queue_%s" % name, SERIAL_QUEUE_BYTES, server, "rw", client, "rw")
        s_d, c_d, d = sysm.shared("serial_data_%s" % name, SERIAL_DATA_BYTES, server, "rw", client, "rw")
        s_id, c_id = sysm.connect(server, client)
        return (c_serial_connection((s_q, q.size), (s_d, d.size), s_id),
                c_serial_connection((c_q, q.size), (c_d, d.size), c_id))

    drv_side, virt_side = serial_connection("driver", serial_driver, serial_virt)
    serial_driver.sections[".serial_driver_config"] = ("serial_driver_config_t", (
        "{ .magic = %s, .tx = %s, .default_baud = 115200, .rx_enabled = false }" % (c_bytes(b"sDDF\x03"), drv_side)))
    serial_clients = []

    timer_driver = None

    def timer_for(fs_pd):
        """sDDF's timer driver (made for the first file system that asks), and fs_pd's channel."""
        nonlocal timer_driver
        t = b["timer"]
        if timer_driver is None:
            timer_driver = sysm.pd("timer_driver", "timer_driver.elf", PRIORITY["timer_driver"])
            regions = []
            if t["paddr"] is not None:
                page = t["paddr"] & ~(PAGE - 1)
                v = timer_driver.map(sysm.region("timer_regs", PAGE, page), cached=False)
                regions.append((v + t["paddr"] - page, PAGE - (t["paddr"] - page), t["paddr"]))
            irq_id = timer_driver.channel_id()
            timer_driver.irqs.append((t["irq"], irq_id, t["trigger"]))
            timer_driver.sections[".device_resources"] = c_device_resources(regions, [irq_id])
        _, f_tid = sysm.connect(timer_driver, fs_pd, b_calls=True)
        return f_tid

    clients = []
    for fs_index, fs in enumerate(desc["fs"]):
        fs_pd = sysm.pd(fs["name"], "asyncfat.elf", PRIORITY["fs"])
        # its block connection: one virtualiser client, one partition
        n = int(fs.get("blk_queue", 128))
        req_bytes, resp_bytes = blk_q(n)
        v_si, f_si, si = sysm.shared("%s_blk_storage_info" % fs["name"], PAGE, blk_virt, "rw", fs_pd, "r")
        v_rq, f_rq, rq = sysm.shared("%s_blk_requests" % fs["name"], req_bytes, blk_virt, "rw", fs_pd, "rw")
        v_rs, f_rs, rs = sysm.shared("%s_blk_responses" % fs["name"], resp_bytes, blk_virt, "rw", fs_pd, "rw")
        data = sysm.dma_region("%s_blk_data" % fs["name"], size_of(fs.get("blk_data", "2M")))
        v_d, f_d = blk_virt.map(data), fs_pd.map(data)
        v_id, f_id = sysm.connect(blk_virt, fs_pd)
        virt_clients.append("{ .conn = %s, .data = { .region = %s, .io_addr = 0x%xul }, .partition = %d }" % (
            c_blk_connection((v_si, si.size), (v_rq, rq.size), (v_rs, rs.size), n, v_id),
            c_region(v_d, data.size), data.paddr, int(fs["partition"])))
        fs_pd.sections[".blk_client_config"] = ("mk_blk_client_config", "{ .magic = %s, .virt = %s, .data = %s }" % (
            c_bytes(b"sDDF\x02"), c_blk_connection((f_si, si.size), (f_rq, rq.size), (f_rs, rs.size), n, f_id),
            c_region(f_d, data.size)))

        if fs.get("timer"):
            fs_pd.sections[".timer_client_config"] = ("mk_timer_client_config", "{ .magic = %s, .driver_id = %d }" % (
                c_bytes(b"sDDF\x06"), timer_for(fs_pd)))

        # its fiber stacks
        extra = {}
        stack_size = size_of(fs.get("stack_size", "24K"))
        if fs.get("stacks", "lionsos") == "lionsos":
            for word, vaddr in LIONS_WORKER_STACKS:
                r = sysm.region("%s_worker_stack_%s" % (fs["name"], word), LIONS_WORKER_STACK_BYTES)
                fs_pd.map(r, vaddr=vaddr, setvar="worker_thread_stack_%s" % word)
        else:
            fibers = int(fs.get("fibers", 48))
            stride = round_up(stack_size, PAGE) + GUARD_GAP
            for i in range(fibers):
                r = sysm.region("%s_fiber_stack_%d" % (fs["name"], i), stack_size)
                fs_pd.map(r, vaddr=GUARDED_STACKS_AT + GUARD_GAP + i * stride)
            extra["stacks"] = "{ { .vaddr = (void *)0x%xul, .stride = 0x%x, .size = 0x%x, .count = %d } }" % (
                GUARDED_STACKS_AT + GUARD_GAP, stride, round_up(stack_size, PAGE), fibers)
            extra["stack_area_count"] = "1"

        # its clients
        connections = []
        for c in fs["clients"]:
            # one priority for all clients: a client waiting on its peers lets them run
            client = sysm.pd(c["name"], "test_client.elf", PRIORITY["client"])
            f_cmd, c_cmd, cmd = sysm.shared("%s_commands" % c["name"], FS_QUEUE_BYTES, fs_pd, "rw", client, "rw")
            f_cpl, c_cpl, cpl = sysm.shared("%s_completions" % c["name"], FS_QUEUE_BYTES, fs_pd, "rw", client, "rw")
            f_sh, c_sh, sh = sysm.shared("%s_share" % c["name"], size_of(c.get("share", "64M")), fs_pd, "rw",
                                         client, "rw")
            f_cid, c_fid = sysm.connect(fs_pd, client)
            connections.append(c_fs_connection((f_cmd, cmd.size), (f_cpl, cpl.size), (f_sh, sh.size), f_cid))
            client.sections[".fs_client_config"] = ("mk_fs_client_config", "{ .magic = %s, .server = %s }" % (
                c_bytes(b"LionsOS\x01"), c_fs_connection((c_cmd, cmd.size), (c_cpl, cpl.size), (c_sh, sh.size),
                                                          c_fid)))
            virt_side_c, client_side = serial_connection(c["name"], serial_virt, client)
            serial_clients.append("{ .conn = %s, .name = %s }" % (virt_side_c, c_string(c["name"])))
            client.sections[".serial_client_config"] = ("serial_client_config_t", "{ .magic = %s, .tx = %s }" % (
                c_bytes(b"sDDF\x03"), client_side))
            roles = 0
            for role in c.get("roles", ["workload"]):
                roles |= 1 << ROLES.index(role)
            dialect = DIALECTS.index(c.get("dialect", "lionsos"))
            client.sections[".test_client_config"] = ("tc_config", (
                "{ .magic = %s, .roles = 0x%x, .index = %d, .peers = %d, .dialect = %d, .seed = %d, .name = %s, "
                ".dir = %s, .shared_dir = %s }" % (c_bytes(b"afclient"), roles, len(connections) - 1,
                                                   len(fs["clients"]), dialect, int(c.get("seed", 1)),
                                                   c_string(c["name"]), c_string(c.get("dir", "/")),
                                                   c_string(c.get("shared_dir", "/shared")))))
            clients.append(c["name"])
        fs_pd.sections[".fs_server_config"] = ("mk_fs_server_config", "{ .magic = %s, .client = %s }" % (
            c_bytes(b"LionsOS\x01"), connections[0]))
        if len(connections) > 1 + MAX_EXTRA_CLIENTS:
            raise SystemExit("%s: at most %d clients" % (fs["name"], 1 + MAX_EXTRA_CLIENTS))
        if len(connections) > 1:
            extra["client_count"] = str(len(connections) - 1)
            extra["clients"] = "{ %s }" % ", ".join(connections[1:])
        if wall_clock is not None and (extra or fs.get("wall_clock")):
            extra["wall_clock"] = "%dll" % wall_clock
        if extra:
            body = ", ".join(".%s = %s" % kv for kv in sorted(extra.items()))
            fs_pd.sections[".asyncfat_config"] = ("mk_asyncfat_config", "{ .magic = %s, %s }" % (
                c_bytes(b"asyncfa\x01"), body))

    blk_virt.sections[".blk_virt_config"] = ("blk_virt_config_t", "{ .magic = %s, .num_clients = %d, "
                                             ".driver = %s, .clients = { %s } }" % (
                                                 c_bytes(b"sDDF\x02"), len(virt_clients), virt_driver,
                                                 ", ".join(virt_clients)))
    serial_virt.sections[".serial_virt_tx_config"] = ("serial_virt_tx_config_t", (
        "{ .magic = %s, .driver = %s, .clients = { %s }, .num_clients = %d, .begin_str = \"\", "
        ".enable_colour = false, .enable_rx = false }" % (c_bytes(b"sDDF\x03"), virt_side, ", ".join(serial_clients),
                                                         len(serial_clients))))
    return sysm, clients


def write_configs(sysm, path):
    lines = ["/* written by sel4/gen_system.py: every PD's configuration, one section each */",
             "#include <stdbool.h>", "#include <sddf/resources/device.h>", "#include <sddf/blk/config.h>",
             "#include <sddf/serial/config.h>", '#include "platform/microkit/config.h"',
             '#include "sel4/clients/test_config.h"', ""]
    blobs = []
    for p in sysm.pds:
        for section, (ctype, body) in sorted(p.sections.items()):
            symbol = "%s_%s" % (p.name, section.strip(".").replace(".", "_"))
            lines.append('__attribute__((section(".cfg.%s"), used)) const %s %s = %s;' % (
                symbol, ctype, symbol, body))
            blobs.append((p, section, symbol))
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    return blobs


def run(cmd):
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if r.returncode != 0:
        sys.stderr.write("%s\n%s" % (" ".join(cmd), r.stdout))
        raise SystemExit("gen_system.py: a command failed")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--board", required=True, choices=sorted(BOARDS))
    ap.add_argument("--description", required=True)
    ap.add_argument("--output", required=True)
    ap.add_argument("--search-path", required=True, help="where the PD programs are")
    ap.add_argument("--cc", required=True)
    ap.add_argument("--objcopy", required=True)
    ap.add_argument("--cflags", default="", help="include paths for sDDF, the board and asyncfat")
    ap.add_argument("--wall-clock", type=int, default=None,
                    help="Unix seconds at boot for asyncfat's file times (default: now)")
    a = ap.parse_args()
    with open(a.description) as f:
        desc = json.load(f)
    wall_clock = a.wall_clock if a.wall_clock is not None else int(time.time())
    sysm, clients = build(a.board, desc, wall_clock)
    os.makedirs(a.output, exist_ok=True)
    name = desc["name"]
    src = os.path.join(a.output, "%s_configs.c" % name)
    obj = os.path.join(a.output, "%s_configs.o" % name)
    blobs = write_configs(sysm, src)
    run([a.cc] + a.cflags.split() + ["-c", src, "-o", obj])
    for p in sysm.pds:
        shutil.copyfile(os.path.join(a.search_path, p.program), os.path.join(a.output, "%s.elf" % p.name))
    for p, section, symbol in blobs:
        blob = os.path.join(a.output, "%s.data" % symbol)
        run([a.objcopy, "-O", "binary", "--only-section=.cfg.%s" % symbol, obj, blob])
        elf = os.path.join(a.output, "%s.elf" % p.name)
        run([a.objcopy, "--update-section", "%s=%s" % (section, blob), elf])
    with open(os.path.join(a.output, "%s.system" % name), "w") as f:
        f.write(sysm.render())
    with open(os.path.join(a.output, "%s.clients" % name), "w") as f:
        f.write("\n".join(clients) + "\n")


if __name__ == "__main__":
    main()
