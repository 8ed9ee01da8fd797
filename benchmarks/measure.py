"""Whole-process wall time and peak memory of a command, measured from outside the process.

The command is started from a small wrapper interpreter, not from the caller: on Linux a child's
ru_maxrss includes the memory of the process it was forked from, so measuring straight from a
benchmark that has torch and models loaded would report the benchmark's own size.

``gfaudit check`` scores each suspect in a worker process (gfaudit/audit/isolation.py), which the main
process's ru_maxrss leaves out. So besides the timed runs, one more run is sampled: every 20 ms the
wrapper walks the command's process tree and sums its proportional set size (PSS: pages shared
between the processes, such as onnxruntime's library, count once in total). Its peak is the
memory the whole command needs; the timed runs are not sampled, so the sampling cannot slow them.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys

_WRAPPER = r"""
import json, os, sys, time
cmd, sample = json.loads(sys.argv[1]), sys.argv[2] == "1"

def tree(root):
    kids = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            kids.setdefault(ppid, []).append(int(d))
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo += kids.get(pid, [])
    return out

def pss_kb(pid):
    for name, key in (("smaps_rollup", "Pss:"), ("status", "VmRSS:")):
        try:
            with open(f"/proc/{pid}/{name}") as f:
                for line in f:
                    if line.startswith(key):
                        return int(line.split()[1])
        except (OSError, ValueError):
            pass
    return 0

devnull = os.open(os.devnull, os.O_WRONLY)
start = time.perf_counter()
pid = os.posix_spawnp(cmd[0], cmd, os.environ, file_actions=[(os.POSIX_SPAWN_DUP2, devnull, 1), (os.POSIX_SPAWN_DUP2, devnull, 2)])
peak_kb, most = 0, 1
while True:
    done, status, usage = os.wait4(pid, os.WNOHANG if sample else 0)
    if done:
        break
    pids = tree(pid)
    peak_kb, most = max(peak_kb, sum(pss_kb(p) for p in pids)), max(most, len(pids))
    time.sleep(0.02)
seconds = time.perf_counter() - start
print(json.dumps([seconds, usage.ru_maxrss / 1024, os.waitstatus_to_exitcode(status), peak_kb / 1024, most]))
"""


def run_once(cmd: list[str], env: dict | None = None, sample: bool = False) -> tuple[float, float, int, float, int]:
    """(seconds, peak RSS of the command's own process in MB, exit code, peak PSS of its whole
    process tree in MB, most processes at once); the last two only when ``sample`` (else 0, 1)."""
    out = subprocess.run(
        [sys.executable, "-S", "-c", _WRAPPER, json.dumps(cmd), "1" if sample else "0"],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    seconds, rss, code, tree_mb, procs = json.loads(out.stdout)
    return seconds, rss, code, tree_mb, procs


def _summary(results: list, sampled: tuple) -> dict:
    """Wall time of the timed runs; memory of the main process from those, and of every process the
    command starts (workers included) from the sampled run."""
    return {
        "median_s": round(statistics.median(r[0] for r in results), 3),
        "min_s": round(min(r[0] for r in results), 3),
        "peak_rss_mb": round(max(r[1] for r in results), 1),
        "peak_all_processes_mb": round(max(sampled[3], sampled[1]), 1),
        "processes": sampled[4],
        "exit_codes": sorted({r[2] for r in [*results, sampled]}),
    }


def median_of(cmd: list[str], runs: int = 5, env: dict | None = None) -> dict:
    """``runs`` timed runs and one sampled run of ``cmd`` (see ``_summary``)."""
    results = [run_once(cmd, env) for _ in range(runs)]
    return _summary(results, run_once(cmd, env, sample=True))


def medians_interleaved(cmds: list[list[str]], runs: int = 5, env: dict | None = None) -> list[dict]:
    """``median_of`` for several commands run in turn (a, b, a, b, ...), so that a change of
    background load during the measurement hits each of them alike; one summary per command."""
    results: list[list[tuple]] = [[] for _ in cmds]
    for _ in range(runs):
        for i, cmd in enumerate(cmds):
            results[i].append(run_once(cmd, env))
    return [_summary(rs, run_once(cmd, env, sample=True)) for cmd, rs in zip(cmds, results, strict=True)]
