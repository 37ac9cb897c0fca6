#!/usr/bin/env python3
# The sandbox nodes' softdog, in a process of its own (run at a raised priority where allowed), so
# that a busy sandbox or a loaded machine does not make a reset late.
#
# Each node's device is a real character device the agent finds as it finds /dev/watchdog: a
# pseudo-terminal whose other end this process reads, linked from the node's directory
# (`<dir>/watchdog` -> /dev/pts/N). Its timeout is published as the kernel publishes softdog's, in
# a sysfs tree (`<sysfs>/watchdogI/{dev,timeout}`, the pty's device number and soft_margin) that the
# agent reads through FAILOVER_AGENT_SYSFS_WATCHDOG: the agent reads the timeout, it is not told it.
#
# As softdog: armed by the first byte written after the device is opened, disarmed by the magic
# 'V'; `timeoutMs` after the last byte read the node resets: it is marked down (a `down` file, so
# that SSM delivers nothing more to it), every process carrying the node's SANDBOX_NODE_DIR in its
# environment is SIGKILLed at once, its interface addresses are gone. A node marked down (crashed or
# reset, until it boots) has no watchdog running; what it wrote before is dropped.
#
#   python3 watchdog-emulator.py '{"timeoutMs":2000,"pollMs":5,"sysfs":"/tmp/...","nodes":[{"name":"node1","dir":"/tmp/..."}]}'
#
# First line on stdout: {"ready":true,"devices":{"node1":"/dev/pts/3",...}}; then one JSON line per
# reset. It ends when its stdin closes (the sandbox ends).
import json
import os
import select
import sys
import time
import tty

spec = json.loads(sys.argv[1])
timeout_ms = int(spec["timeoutMs"])
if timeout_ms % 1000 != 0:
    sys.exit("watchdog-emulator: sysfs publishes whole seconds; timeoutMs must be a multiple of 1000")
poll = spec.get("pollMs", 5) / 1000
nodes = []
for i, n in enumerate(spec["nodes"]):
    master, slave = os.openpty()
    # Raw: every byte the agent writes arrives as it was written, at once.
    tty.setraw(slave)
    os.set_blocking(master, False)
    rdev = os.fstat(slave).st_rdev
    entry = os.path.join(spec["sysfs"], f"watchdog{i}")
    os.makedirs(entry, exist_ok=True)
    with open(os.path.join(entry, "dev"), "w") as f:
        f.write(f"{os.major(rdev)}:{os.minor(rdev)}\n")
    with open(os.path.join(entry, "timeout"), "w") as f:
        f.write(f"{timeout_ms // 1000}\n")
    link = os.path.join(n["dir"], "watchdog")
    if os.path.lexists(link):
        os.remove(link)
    os.symlink(os.ttyname(slave), link)
    # `slave` stays open here: with no writer left the master would read EIO in a loop.
    nodes.append({"name": n["name"], "dir": n["dir"], "master": master, "slave": slave,
                  "armed": False, "fed": 0.0})
by_fd = {n["master"]: n for n in nodes}
print(json.dumps({"ready": True, "devices": {n["name"]: os.ttyname(n["slave"]) for n in nodes}}), flush=True)


def down(n):
    return os.path.exists(os.path.join(n["dir"], "down"))


def kill_everything(n):
    marker = f"SANDBOX_NODE_DIR={n['dir']}\0".encode()
    killed = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            with open(f"/proc/{entry}/environ", "rb") as f:
                if marker in f.read() + b"\0":
                    os.kill(int(entry), 9)
                    killed.append(int(entry))
        except OSError:
            pass  # gone meanwhile, or not ours
    return killed


def reset(n, now):
    with open(os.path.join(n["dir"], "down"), "w") as f:
        f.write(str(int(now * 1000)))
    # Twice: a process forked while the first sweep ran is caught by the second.
    killed = kill_everything(n) + kill_everything(n)
    with open(os.path.join(n["dir"], "addrs"), "w") as f:
        f.write("")
    n["armed"] = False
    overdue = (now - n["fed"]) * 1000 - timeout_ms
    print(json.dumps({"node": n["name"], "at": int(now * 1000), "notFedMs": round((now - n["fed"]) * 1000),
                      "overdueMs": round(overdue), "killed": len(killed)}), flush=True)


stdin = sys.stdin.fileno()
while True:
    now = time.time()
    deadlines = [n["fed"] + timeout_ms / 1000 - now for n in nodes if n["armed"]]
    wait = max(0.0, min([poll] + deadlines))
    readable, _, _ = select.select([stdin] + list(by_fd), [], [], wait)
    now = time.time()
    for fd in readable:
        if fd == stdin:
            if not os.read(stdin, 4096):
                sys.exit(0)
            continue
        n = by_fd[fd]
        try:
            data = os.read(fd, 4096)
        except BlockingIOError:
            continue
        if not data or down(n):
            continue
        n["armed"] = data[-1:] != b"V"
        n["fed"] = now
    for n in nodes:
        if down(n):
            n["armed"] = False
        elif n["armed"] and (now - n["fed"]) * 1000 >= timeout_ms:
            reset(n, now)
