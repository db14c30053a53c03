"""Memory of a long meta-training: peak RSS, RSS growth, and (with Ray) leaked processes.

The training runs in a child process (``navigation`` preset, ``outer.iterations=N``), so that
its peak RSS is its own and so that, once it has exited, nothing of it should remain.
``reptile_rl.runlog.RunLog.record`` is wrapped (in the child only) to sample ``VmRSS`` after
every meta-iteration: of the driver, and with ``--backend ray`` of every worker (pids from the
actors' ``pid()`` method; ``reptile_rl.trainer.make_backend`` is wrapped to get at them).

- Peak: the driver's ``VmHWM`` at the end of training (and each worker's). Target <= 1 GB
  (10^9 bytes).
- Growth: RSS at the last iteration / RSS at iteration ``--warmup`` (default 10) - 1, for the
  driver and for the sum of the workers. Target < 10%.
- Ray only: no crash; after training the child shuts Ray down and exits; then every process it
  ever started (recorded at each iteration) and every process of its Ray session must be gone
  (checked with ``ps``, allowing a grace period).

Usage: ``python -m benchmarks.memory [--quick] [--iterations N] [--warmup W]
[--backend serial|ray] [--workers K]``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any
from unittest import mock

from benchmarks.common import QUICK_NOTE, mib, read_status, single_thread, table, verdict

PEAK_TARGET = 10**9
GROWTH_TARGET = 0.10
LEAK_GRACE_SECONDS = 30.0
QUICK_OVERRIDES = ["outer.meta_batch_size=2", "inner.updates=1", "inner.n_epochs=2"]
ROOT = Path(__file__).resolve().parent.parent


@dataclasses.dataclass
class Sample:
    """Memory after one meta-iteration.

    Attributes:
        iteration: The iteration just logged.
        seconds: Time since training started.
        rss: The driver's VmRSS in bytes.
        workers: Worker pid -> its VmRSS in bytes.
    """

    iteration: int
    seconds: float
    rss: int
    workers: dict[str, int]


@dataclasses.dataclass
class ChildReport:
    """What the child process reports.

    Attributes:
        samples: One per meta-iteration.
        peak: The driver's VmHWM at the end of training, in bytes.
        worker_peaks: Worker pid -> its last VmHWM, in bytes.
        started: Pid -> command line of every process the child started (descendants).
        session: The Ray session name, if Ray ran.
        error: The traceback if training raised, else ``None``.
    """

    samples: list[Sample]
    peak: int
    worker_peaks: dict[str, int]
    started: dict[str, str]
    session: str | None
    error: str | None


def descendants(root: int) -> dict[str, str]:
    """Pid -> command line of every live descendant of process ``root``."""
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as file:
                stat = file.read()
        except OSError:
            continue
        # The command name may contain spaces and parentheses: parse after the last ')'.
        fields = stat[stat.rfind(")") + 2 :].split()
        parents[int(entry)] = int(fields[1])
    found: dict[str, str] = {}
    frontier = [root]
    while frontier:
        parent = frontier.pop()
        for pid, ppid in parents.items():
            if ppid == parent and str(pid) not in found:
                try:
                    with open(f"/proc/{pid}/cmdline", "rb") as file:
                        command = file.read().replace(b"\0", b" ").decode(errors="replace")
                except OSError:
                    command = ""
                found[str(pid)] = command.strip()
                frontier.append(pid)
    return found


# -- the child: train and sample ---------------------------------------------------------------


def child(output: Path, iterations: int, backend: str, workers: int, quick: bool) -> None:
    """Meta-train and write a :class:`ChildReport` as JSON to ``output``."""
    single_thread()
    import reptile_rl.trainer as trainer_module
    from reptile_rl import Trainer, load_config
    from reptile_rl.config import ParallelConfig
    from reptile_rl.parallel import Backend, RayBackend, make_backend
    from reptile_rl.runlog import RunLog

    overrides = [
        f"parallel.backend={backend}",
        f"parallel.workers={workers}",
        f"outer.iterations={iterations}",
        *(QUICK_OVERRIDES if quick else []),
    ]
    config = load_config("navigation", overrides)
    created: list[Backend] = []
    samples: list[Sample] = []
    started: dict[str, str] = {}
    worker_peaks: dict[str, int] = {}
    original_make_backend = make_backend
    original_record = RunLog.record
    start = time.perf_counter()

    def worker_pids() -> list[int]:
        if not created or not isinstance(created[0], RayBackend):
            return []
        import ray

        return [int(ray.get(actor.pid.remote())) for actor in created[0].actors]

    def capturing_make_backend(parallel: ParallelConfig) -> Backend:
        backend = original_make_backend(parallel)
        created.append(backend)
        return backend

    def sampling_record(self: RunLog, row: dict[str, Any], *args: Any, **kwargs: Any) -> None:
        original_record(self, row, *args, **kwargs)
        worker_rss = {}
        for pid in worker_pids():
            status = read_status(pid)
            worker_rss[str(pid)] = status.get("VmRSS", 0)
            worker_peaks[str(pid)] = status.get("VmHWM", 0)
        started.update(descendants(os.getpid()))
        rss = read_status().get("VmRSS", 0)
        samples.append(Sample(int(row["iteration"]), time.perf_counter() - start, rss, worker_rss))

    error = None
    session = None
    with tempfile.TemporaryDirectory(prefix="bench-memory-") as tmp:
        try:
            with (
                mock.patch.object(trainer_module, "make_backend", capturing_make_backend),
                mock.patch.object(RunLog, "record", sampling_record),
            ):
                Trainer(config, Path(tmp) / "run").learn()
        except BaseException:
            error = traceback.format_exc()
        peak = read_status().get("VmHWM", 0)
        started.update(descendants(os.getpid()))
        if backend == "ray":
            import ray

            if ray.is_initialized():
                session = ray.get_runtime_context().get_session_name()
                ray.shutdown()
    report = ChildReport(samples, peak, worker_peaks, started, session, error)
    output.write_text(json.dumps(dataclasses.asdict(report)))


# -- the parent: run the child, then look for leftovers --------------------------------------


def leftovers(report: ChildReport) -> list[str]:
    """``ps`` lines of live processes the child started (Ray ones) or of its Ray session.

    Zombies (exited, not yet reaped by init) are not counted.
    """
    listing = subprocess.run(
        ["ps", "-ww", "-eo", "pid=,stat=,args="], capture_output=True, text=True, check=True
    ).stdout
    found = []
    for line in listing.splitlines():
        fields = line.split(maxsplit=2)
        if len(fields) < 3 or fields[1].startswith("Z"):
            continue
        pid, _, args = fields
        ours = pid in report.started and "ray" in args.lower()
        if ours or (report.session is not None and report.session in args):
            found.append(f"{pid} {args[:120]}")
    return found


def growth(values: list[int]) -> float:
    """``values[-1] / values[0] - 1``."""
    return values[-1] / values[0] - 1.0


def run(
    quick: bool,
    iterations: int | None = None,
    warmup: int | None = None,
    backend: str = "serial",
    workers: int | None = None,
) -> str:
    """Run benchmark 4 and return its Markdown section.

    Args:
        quick: Small sizes for a smoke run.
        iterations: Meta-iterations to train.
        warmup: Iteration whose RSS is the baseline of the growth.
        backend: ``serial`` or ``ray``.
        workers: Ray workers (``ray`` only; default 2).
    """
    iterations = iterations or (12 if quick else 200)
    warmup = warmup if warmup is not None else (5 if quick else 10)
    workers = workers or (2 if backend == "ray" else 1)
    if not 0 <= warmup < iterations - 1:
        raise ValueError(f"--warmup must be in [0, iterations - 1), got {warmup}")
    with tempfile.TemporaryDirectory(prefix="bench-memory-") as tmp:
        output = Path(tmp) / "report.json"
        command = [
            sys.executable,
            "-m",
            "benchmarks.memory",
            "--child",
            str(output),
            "--iterations",
            str(iterations),
            "--backend",
            backend,
            "--workers",
            str(workers),
            *(["--quick"] if quick else []),
        ]
        start = time.perf_counter()
        process = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False)
        elapsed = time.perf_counter() - start
        if not output.exists():
            tail = "\n".join(process.stderr.splitlines()[-20:])
            return (
                f"## 4. Memory (`navigation`, {backend})\n\n**The child process failed** "
                f"(exit code {process.returncode}):\n\n```\n{tail}\n```\n"
            )
        raw = json.loads(output.read_text())
    report = ChildReport(samples=[Sample(**sample) for sample in raw.pop("samples")], **raw)
    remaining: list[str] = []
    if backend == "ray":
        deadline = time.monotonic() + LEAK_GRACE_SECONDS
        remaining = leftovers(report)
        while remaining and time.monotonic() < deadline:
            time.sleep(1.0)
            remaining = leftovers(report)
    return _markdown(
        report, process.returncode, elapsed, remaining, iterations, warmup, backend, workers, quick
    )


def _markdown(
    report: ChildReport,
    returncode: int,
    elapsed: float,
    remaining: list[str],
    iterations: int,
    warmup: int,
    backend: str,
    workers: int,
    quick: bool,
) -> str:
    samples = report.samples
    title = f"## 4. Memory (`navigation`, {backend}" + (
        f", {workers} workers)" if backend == "ray" else ")"
    )
    parts = [title]
    if quick:
        parts.append(QUICK_NOTE + f" Quick mode also sets {', '.join(QUICK_OVERRIDES)}.")
    crashed = report.error is not None or returncode != 0
    parts.append(
        f"{len(samples)} of {iterations} meta-iterations completed in a child process "
        f"({elapsed:.0f} s including start-up); exit code {returncode}"
        + (", **training raised**:" if report.error else ".")
    )
    if report.error:
        parts.append("```\n" + "\n".join(report.error.splitlines()[-15:]) + "\n```")
    by_iteration = {sample.iteration: sample for sample in samples}
    if warmup not in by_iteration or len(samples) < 2:
        parts.append(f"Too few samples to measure growth (need iteration {warmup}).")
        return "\n\n".join(parts) + "\n"
    base, last = by_iteration[warmup], samples[-1]
    marks = sorted({0, warmup, *(last.iteration * k // 4 for k in (1, 2, 3)), last.iteration})
    rows = []
    for iteration in marks:
        if iteration not in by_iteration:
            continue
        sample = by_iteration[iteration]
        row = [iteration, f"{sample.seconds:.0f}", mib(sample.rss)]
        if backend == "ray":
            row += [len(sample.workers), mib(sum(sample.workers.values()))]
        rows.append(row)
    headers = ["iteration", "s", "driver VmRSS"]
    if backend == "ray":
        headers += ["workers", "sum of workers' VmRSS"]
    parts.append(table(headers, rows))
    driver_growth = growth([base.rss, last.rss])
    lines = [
        f"- Driver peak (VmHWM): **{mib(report.peak)}**; target <= 1 GB: "
        f"{verdict(report.peak, PEAK_TARGET, higher_is_better=False)}.",
        f"- Driver RSS growth, iteration {warmup} -> {last.iteration}: "
        f"**{driver_growth:+.1%}**; target < {GROWTH_TARGET:.0%}: "
        f"{verdict(driver_growth, GROWTH_TARGET, higher_is_better=False)}.",
    ]
    if backend == "ray":
        worker_growth = growth([sum(base.workers.values()), sum(last.workers.values())])
        restarted = set(base.workers) != set(last.workers)
        worst = max(report.worker_peaks.values(), default=0)
        lines += [
            f"- Workers' peak (largest VmHWM): **{mib(worst)}**; target <= 1 GB: "
            f"{verdict(worst, PEAK_TARGET, higher_is_better=False)}.",
            f"- Sum of the workers' RSS growth: **{worker_growth:+.1%}**"
            + (" (a worker was restarted in between)" if restarted else "")
            + f"; target < {GROWTH_TARGET:.0%}: "
            f"{verdict(worker_growth, GROWTH_TARGET, higher_is_better=False)}.",
            f"- No crash: {'**NOT met**' if crashed else '**met**'}.",
            f"- Leaked processes after exit ({len(report.started)} processes started, Ray "
            f"session `{report.session}`, checked with `ps` up to {LEAK_GRACE_SECONDS:.0f} s "
            f"later): {len(remaining)}: {'**met**' if not remaining else '**NOT met**'}.",
        ]
        if remaining:
            lines.append("```\n" + "\n".join(remaining) + "\n```")
    parts.append("\n".join(lines))
    return "\n\n".join(parts) + "\n"


def main() -> None:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="small sizes (smoke run)")
    parser.add_argument("--iterations", type=int, help="meta-iterations (default 200)")
    parser.add_argument("--warmup", type=int, help="baseline iteration of the growth (10)")
    parser.add_argument("--backend", choices=["serial", "ray"], default="serial")
    parser.add_argument("--workers", type=int, help="Ray workers (default 2 with ray)")
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        child(args.child, args.iterations, args.backend, args.workers or 1, args.quick)
        return
    print(run(args.quick, args.iterations, args.warmup, args.backend, args.workers))


if __name__ == "__main__":
    main()
