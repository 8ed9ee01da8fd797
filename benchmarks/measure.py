"""Whole-process wall time and peak memory of a command, measured from outside the process.

The command is started from a small wrapper interpreter, not from the caller: on Linux a child's
ru_maxrss includes the memory of the process it was forked from, so measuring straight from a
benchmark that has torch and models loaded would report the benchmark's own size.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys

_WRAPPER = r"""
import json, os, subprocess, sys, time
cmd = json.loads(sys.argv[1])
start = time.perf_counter()
proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
_, status, usage = os.wait4(proc.pid, 0)
print(json.dumps([time.perf_counter() - start, usage.ru_maxrss / 1024, os.waitstatus_to_exitcode(status)]))
"""


def run_once(cmd: list[str], env: dict | None = None) -> tuple[float, float, int]:
    """(seconds, peak RSS in MB, exit code) of one run of ``cmd``."""
    out = subprocess.run(
        [sys.executable, "-S", "-c", _WRAPPER, json.dumps(cmd)], capture_output=True, text=True, env=env, check=True
    )
    seconds, rss, code = json.loads(out.stdout)
    return seconds, rss, code


def median_of(cmd: list[str], runs: int = 5, env: dict | None = None) -> dict:
    results = [run_once(cmd, env) for _ in range(runs)]
    return {
        "median_s": round(statistics.median(r[0] for r in results), 3),
        "min_s": round(min(r[0] for r in results), 3),
        "peak_rss_mb": round(max(r[1] for r in results), 1),
        "exit_codes": sorted({r[2] for r in results}),
    }


def medians_interleaved(cmds: list[list[str]], runs: int = 5, env: dict | None = None) -> list[dict]:
    """``median_of`` for several commands run in turn (a, b, a, b, ...), so that a change of
    background load during the measurement hits each of them alike; one summary per command."""
    results: list[list[tuple[float, float, int]]] = [[] for _ in cmds]
    for _ in range(runs):
        for i, cmd in enumerate(cmds):
            results[i].append(run_once(cmd, env))
    return [
        {
            "median_s": round(statistics.median(r[0] for r in rs), 3),
            "min_s": round(min(r[0] for r in rs), 3),
            "peak_rss_mb": round(max(r[1] for r in rs), 1),
            "exit_codes": sorted({r[2] for r in rs}),
        }
        for rs in results
    ]
