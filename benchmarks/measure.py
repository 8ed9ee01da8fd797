"""Whole-process wall time and peak memory of a command, measured from outside the process."""

from __future__ import annotations

import os
import statistics
import subprocess
import time


def run_once(cmd: list[str], env: dict | None = None) -> tuple[float, float, int]:
    """(seconds, peak RSS in MB, exit code) of one run of ``cmd``."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return time.perf_counter() - start, usage.ru_maxrss / 1024, proc.returncode


def median_of(cmd: list[str], runs: int = 5, env: dict | None = None) -> dict:
    results = [run_once(cmd, env) for _ in range(runs)]
    return {"median_s": round(statistics.median(r[0] for r in results), 3),
            "min_s": round(min(r[0] for r in results), 3),
            "peak_rss_mb": round(max(r[1] for r in results), 1),
            "exit_codes": sorted({r[2] for r in results})}
