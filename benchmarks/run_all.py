"""Run the benchmark suite and write ``benchmarks/PERFORMANCE.md``.

Runs 1 (env throughput), 2 (loop overhead), 3 (Ray scaling), 5 (learner build cost) and 6
(lockstep engine); with ``--long`` also 4 (memory: a serial run and the 2-worker Ray soak test),
before 5. Prints the Markdown as it goes and rewrites the output file after each section, so a
partial run keeps its results. A benchmark that raises is reported in its section and makes the
exit code 1.

Usage: ``python -m benchmarks.run_all [--quick] [--long] [--output PATH]``.
"""

from __future__ import annotations

import argparse
import datetime
import importlib.metadata
import os
import platform
import shlex
import subprocess
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path

from benchmarks import (
    env_throughput,
    learner_build_cost,
    lockstep_speed,
    loop_overhead,
    memory,
    ray_scaling,
)
from benchmarks.common import cpu_count, single_thread

DEFAULT_OUTPUT = Path(__file__).resolve().parent / "PERFORMANCE.md"
PACKAGES = ("torch", "stable-baselines3", "gymnasium", "mujoco", "numpy", "ray")


def _version(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as file:
            for line in file:
                if line.startswith("model name"):
                    return line.partition(":")[2].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _commit() -> str:
    """The checked-out commit (read-only ``git rev-parse``), or ``unknown``."""
    try:
        result = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=Path(__file__).resolve().parent,
            capture_output=True,
            text=True,
            check=True,
        )
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return result.stdout.strip()


def header(argv: list[str], quick: bool) -> str:
    """The report's title and the machine it ran on."""
    nproc = subprocess.run(["nproc"], capture_output=True, text=True, check=False).stdout.strip()
    versions = ", ".join(f"{name} {_version(name)}" for name in PACKAGES)
    command = shlex.join(["python", "-m", "benchmarks.run_all", *argv])
    load = ", ".join(f"{value:.2f}" for value in os.getloadavg())
    lines = [
        "# Performance",
        "",
        f"- Date: {datetime.datetime.now().astimezone().isoformat(timespec='seconds')}",
        f"- Machine: `nproc` = {nproc or '?'} ({cpu_count()} usable), {_cpu_model()}, "
        f"{platform.system()} {platform.release()}; load average at start {load}",
        f"- Python {platform.python_version()}; {versions}",
        f"- Commit: {_commit()} (working tree may include uncommitted changes)",
        f"- Command: `{command}`",
        "",
        "Every comparison runs its alternatives side by side in one process, interleaving "
        "their repeats, and reports the median of the per-round ratios next to the raw "
        "medians; every timed process uses one torch thread.",
    ]
    if quick:
        lines += [
            "",
            "**`--quick` smoke run: sizes are reduced, the numbers are not meaningful.**",
        ]
    return "\n".join(lines) + "\n"


def _guarded(name: str, benchmark: Callable[[], str]) -> tuple[str, bool]:
    """Run one benchmark; on an exception return its traceback as the section."""
    start = time.perf_counter()
    try:
        text = benchmark()
        ok = True
    except Exception:
        text = f"## {name}\n\n**Failed:**\n\n```\n{traceback.format_exc()}```\n"
        ok = False
    return text + f"\n_{name}: {time.perf_counter() - start:.0f} s._\n", ok


def suite(quick: bool, long: bool) -> list[tuple[str, Callable[[], str]]]:
    """The benchmarks to run, by name."""
    benchmarks: list[tuple[str, Callable[[], str]]] = [
        ("env_throughput", lambda: env_throughput.run(quick)),
        ("loop_overhead", lambda: loop_overhead.run(quick)),
        ("ray_scaling", lambda: ray_scaling.run(quick)),
    ]
    if long:
        benchmarks += [
            ("memory (serial)", lambda: memory.run(quick)),
            ("memory (ray, 2 workers)", lambda: memory.run(quick, backend="ray", workers=2)),
        ]
    benchmarks.append(("learner_build_cost", lambda: learner_build_cost.run(quick)))
    benchmarks.append(
        ("lockstep_speed", lambda: lockstep_speed.run(["navigation"], 2 if quick else 7, quick))
    )
    return benchmarks


def run_sections(
    head: str,
    benchmarks: list[tuple[str, Callable[[], str]]],
    output: Path | None = None,
    echo: bool = False,
) -> tuple[str, bool]:
    """Run ``benchmarks`` after ``head``; return the Markdown and whether all succeeded.

    Args:
        head: The report's header.
        benchmarks: Name -> benchmark, in order.
        output: File rewritten after every section, if given.
        echo: Print each section to stdout as it completes.
    """
    sections = [head]
    if echo:
        print(head, flush=True)
    all_ok = True
    for name, benchmark in benchmarks:
        text, ok = _guarded(name, benchmark)
        all_ok &= ok
        sections.append(text)
        if echo:
            print(text, flush=True)
        if output is not None:
            output.write_text("\n".join(sections))
    return "\n".join(sections), all_ok


def run(quick: bool, long: bool = False) -> str:
    """Run the suite and return the whole Markdown report (nothing is written).

    Args:
        quick: Small sizes for a smoke run.
        long: Also run the memory benchmarks (200 meta-iterations each by default).
    """
    single_thread()
    argv = [*(["--quick"] if quick else []), *(["--long"] if long else [])]
    return run_sections(header(argv, quick), suite(quick, long))[0]


def main() -> None:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="small sizes (smoke run)")
    parser.add_argument("--long", action="store_true", help="also run the memory benchmarks")
    parser.add_argument(
        "--output", type=Path, default=DEFAULT_OUTPUT, help=f"default {DEFAULT_OUTPUT}"
    )
    args = parser.parse_args()
    single_thread()
    head = header(sys.argv[1:], args.quick)
    _, ok = run_sections(head, suite(args.quick, args.long), args.output, echo=True)
    print(f"Written to {args.output}", file=sys.stderr)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
