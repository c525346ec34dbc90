#!/usr/bin/env python3
"""What a group of processes has used, read from /proc, for make bench.

  proc_usage.py cpu GROUP=PID[,PID...] ...   CPU seconds of each group: every live process in
                                             the trees under its PIDs, with the time of the
                                             children they reaped (so a finished task's
                                             process, or an ended PostgreSQL backend, counts)
  proc_usage.py rss GROUP=PID ...            VmRSS and VmHWM (peak) in MB of each PID

Prints one JSON object. A PID that is gone counts as nothing.
"""
import json
import os
import sys

TICKS = os.sysconf("SC_CLK_TCK")


def stat(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            text = f.read()
    except OSError:
        return None
    # The command name is in parentheses and may hold spaces: split after its last ')'.
    fields = text[text.rindex(")") + 2:].split()
    ppid = int(fields[1])
    utime, stime, cutime, cstime = (int(x) for x in fields[11:15])
    return ppid, (utime + stime + cutime + cstime) / TICKS


def processes():
    table = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            s = stat(int(name))
            if s:
                table[int(name)] = s
    return table


def cpu(groups):
    table = processes()
    children = {}
    for pid, (ppid, _) in table.items():
        children.setdefault(ppid, []).append(pid)
    result = {}
    for group, roots in groups.items():
        seen, stack, total = set(), list(roots), 0.0
        while stack:
            pid = stack.pop()
            if pid in seen or pid not in table:
                continue
            seen.add(pid)
            total += table[pid][1]
            stack.extend(children.get(pid, []))
        result[group] = round(total, 3)
    return result


def rss(groups):
    result = {}
    for group, pids in groups.items():
        values = {"rss_mb": 0.0, "hwm_mb": 0.0}
        for pid in pids:
            try:
                with open(f"/proc/{pid}/status") as f:
                    for line in f:
                        key, _, value = line.partition(":")
                        if key in ("VmRSS", "VmHWM"):
                            values["rss_mb" if key == "VmRSS" else "hwm_mb"] += int(value.split()[0]) / 1024
            except OSError:
                pass
        result[group] = {k: round(v, 1) for k, v in values.items()}
    return result


def parse(args):
    groups = {}
    for arg in args:
        group, _, pids = arg.partition("=")
        groups[group] = [int(p) for p in pids.split(",") if p.strip().isdigit()]
    return groups


if __name__ == "__main__":
    if len(sys.argv) < 2 or sys.argv[1] not in ("cpu", "rss"):
        sys.exit(__doc__)
    groups = parse(sys.argv[2:])
    print(json.dumps(cpu(groups) if sys.argv[1] == "cpu" else rss(groups), sort_keys=True))
