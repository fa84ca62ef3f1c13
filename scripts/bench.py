#!/usr/bin/env python3
"""Benchmarks quoted in the README. Prints figures; asserts nothing.

1. Synth of every stage vs an empty CDK app (one stack, one no-op resource), both through the pinned
   CDK CLI (what `make synth` does) and as a bare `python app.py` (no Node CLI).
2. Wall time of `make demo`: the dev pipeline end to end offline (one run).
3. Wall time of the whole test suite with a warm .venv (what `make test` runs).

    python scripts/bench.py [--runs N] [--skip-tests]
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


def _env(**extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "PATH": f"{Path(PYTHON).parent}:{os.environ['PATH']}",
        "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20",
        "CDK_DISABLE_CLI_TELEMETRY": "true",
        **extra,
    }


def _time(command: list[str], runs: int, **env: str) -> float:
    samples = []
    for _ in range(runs):
        with tempfile.TemporaryDirectory() as out:
            command_run = [part.replace("{out}", out) for part in command]
            start = time.perf_counter()
            subprocess.run(command_run, cwd=REPO, env=_env(CDK_OUTDIR=out, **env), check=True,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--skip-tests", action="store_true")
    args = parser.parse_args()

    context = json.loads((REPO / "cdk.json").read_text())["context"]
    with tempfile.TemporaryDirectory() as scratch:
        empty = Path(scratch) / "empty_app.py"
        empty.write_text(EMPTY_APP)
        cli = [str(CLI), "--no-notices", "synth", "--quiet", "-o", "{out}"]
        figures = {
            "empty app, CDK CLI": _time([*cli, "--app", f"python3 {empty}"], args.runs),
            "all stages, CDK CLI": _time([*cli, "-c", "stage=all"], args.runs),
            "empty app, python only": _time([PYTHON, str(empty)], args.runs),
            "all stages, python only": _time(
                [PYTHON, "app.py"], args.runs, CDK_CONTEXT_JSON=json.dumps({**context, "stage": "all"})
            ),
        }

    print(f"machine: {os.cpu_count()} cores, Python {platform.python_version()}, median of {args.runs} runs\n")
    print(f"{'synth':<28}{'seconds':>8}")
    for name, seconds in figures.items():
        print(f"{name:<28}{seconds:>8.1f}")
    for mode in ("CDK CLI", "python only"):
        ratio = figures[f"all stages, {mode}"] / figures[f"empty app, {mode}"]
        print(f"ratio all stages / empty app ({mode}): {ratio:.2f}x (goal: within 2x)")

    demo = _time([PYTHON, "scripts/demo.py"], 1)
    print(f"\nmake demo (synth dev + offline end-to-end run, real XGBoost training): {demo:.1f} s (goal: under 120 s)")

    if not args.skip_tests:
        start = time.perf_counter()
        result = subprocess.run([PYTHON, "-m", "pytest", "-q", "-p", "no:cacheprovider"], cwd=REPO, env=_env(),
                                capture_output=True, text=True)
        elapsed = time.perf_counter() - start
        summary = result.stdout.strip().splitlines()[-1] if result.stdout.strip() else "(no output)"
        print(f"\ntest suite (warm .venv): {elapsed:.0f} s  [{summary}] (goal: under 180 s)")
        if result.returncode != 0:
            return result.returncode
    return 0


if __name__ == "__main__":
    sys.exit(main())
