#!/usr/bin/env python3
"""Benchmarks quoted in the README and docs/benchmarks.md. Prints figures; asserts nothing.

1. Synth of every stage vs an empty CDK app (one stack, one no-op resource), both through the
   pinned CDK CLI (what `make synth` does) and as a bare `python app.py` (no Node CLI). The two
   apps run alternately, so a change in the machine's load moves both; medians of ``--runs``.
2. Wall time of `make demo`: the dev pipeline end to end offline (one run).
3. Wall time of `make test` with a warm .venv and node_modules (the README's test command).
4. Wall time of `make test` on a fresh clone of the committed HEAD, installs included
   (pip and npm read their download caches, as a second clone on the same machine would).

    python scripts/bench.py [--runs N] [--skip-tests] [--skip-fresh-clone]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
CLI = REPO / "node_modules" / ".bin" / "cdk"
# The baseline: one stack holding one no-op resource (CloudFormation rejects an empty
# Resources section, and cdk.json turns that rule into a synth error).
EMPTY_APP = (
    "import aws_cdk as cdk\napp = cdk.App()\n"
    "cdk.CfnWaitConditionHandle(cdk.Stack(app, 'Empty'), 'Placeholder')\napp.synth()\n"
)
GOALS = {"synth": 2.0, "suite": 180.0, "fresh": 360.0, "demo": 120.0}


def _env(**extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "PATH": f"{Path(PYTHON).parent}:{os.environ['PATH']}",
        "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20",
        "CDK_DISABLE_CLI_TELEMETRY": "true",
        **extra,
    }


def _once(command: list[str], cwd: Path = REPO, **env: str) -> float:
    with tempfile.TemporaryDirectory() as out:
        start = time.perf_counter()
        subprocess.run([part.replace("{out}", out) for part in command], cwd=cwd, env=_env(CDK_OUTDIR=out, **env),
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        return time.perf_counter() - start


def _alternating(commands: dict[str, tuple[list[str], dict[str, str]]], runs: int) -> dict[str, float]:
    samples: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(runs):
        for name, (command, env) in commands.items():
            samples[name].append(_once(command, **env))
    return {name: statistics.median(values) for name, values in samples.items()}


def _load() -> str:
    one, five, _ = os.getloadavg()
    return f"load average {one:.2f} (1 min) / {five:.2f} (5 min)"


def _timed_make_test(cwd: Path) -> tuple[float, str, int]:
    start = time.perf_counter()
    result = subprocess.run(["make", "test"], cwd=cwd, env=_env(), capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    lines = [line for line in result.stdout.strip().splitlines() if " passed" in line or " failed" in line]
    return elapsed, (lines[-1].strip("= ") if lines else result.stderr.strip()[-300:]), result.returncode


def synth_figures(runs: int) -> None:
    context = json.loads((REPO / "cdk.json").read_text())["context"]
    with tempfile.TemporaryDirectory() as scratch:
        empty = Path(scratch) / "empty_app.py"
        empty.write_text(EMPTY_APP)
        cli = [str(CLI), "--no-notices", "synth", "--quiet", "-o", "{out}"]
        every_stage = json.dumps({**context, "stage": "all"})
        figures = {
            **_alternating({"empty app, CDK CLI": ([*cli, "--app", f"python3 {empty}"], {}),
                            "all stages, CDK CLI": ([*cli, "-c", "stage=all"], {})}, runs),
            **_alternating({"empty app, python only": ([PYTHON, str(empty)], {}),
                            "all stages, python only": ([PYTHON, "app.py"], {"CDK_CONTEXT_JSON": every_stage})}, runs),
        }
    print(f"{'synth (median of ' + str(runs) + ')':<28}{'seconds':>8}")
    for name, seconds in figures.items():
        print(f"{name:<28}{seconds:>8.1f}")
    for mode in ("CDK CLI", "python only"):
        ratio = figures[f"all stages, {mode}"] / figures[f"empty app, {mode}"]
        print(f"ratio all stages / empty app ({mode}): {ratio:.2f}x (goal: at most {GOALS['synth']:.1f}x)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--skip-tests", action="store_true", help="skip both test-suite figures")
    parser.add_argument("--skip-fresh-clone", action="store_true")
    args = parser.parse_args()

    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True).stdout.strip()
    print(f"machine: {os.cpu_count()} cores, Python {platform.python_version()}, commit {commit}, {_load()}\n")
    synth_figures(args.runs)

    demo = _once([PYTHON, "scripts/demo.py"])
    print(f"\nmake demo (synth dev + offline end-to-end run, real XGBoost training): {demo:.1f} s "
          f"(goal: under {GOALS['demo']:.0f} s)")

    status = 0
    if not args.skip_tests:
        elapsed, summary, status = _timed_make_test(REPO)
        print(f"\nmake test, warm .venv: {elapsed:.0f} s  [{summary}] (goal: at most {GOALS['suite']:.0f} s)")
    if not (args.skip_tests or args.skip_fresh_clone):
        with tempfile.TemporaryDirectory() as scratch:
            clone = Path(scratch) / "clone"
            subprocess.run(["git", "clone", "--quiet", str(REPO), str(clone)], check=True)
            elapsed, summary, fresh_status = _timed_make_test(clone)
        print(f"make test, fresh clone of {commit} (installs included): {elapsed:.0f} s  [{summary}] "
              f"(goal: at most {GOALS['fresh']:.0f} s)")
        status = status or fresh_status
    print(f"\nafterwards: {_load()}")
    return status


if __name__ == "__main__":
    sys.exit(main())
