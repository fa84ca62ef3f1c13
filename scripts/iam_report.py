#!/usr/bin/env python3
"""`make iam-report`: run the stage's pipeline offline in every deployment mode, updating the
real-time endpoint, and with tuning, then print, per IAM role, the actions the runs called, any
call its synthesized policy does not allow, and granted actions no run used (review candidates:
some are used by SageMaker itself in ways offline runs cannot show, e.g. a training or
processing job's image pull and logs; an endpoint's image pull and model download are shown).
Exits 1 when a call was not allowed or a run did not do what it was started for.

    python scripts/iam_report.py [--stage dev]
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
import warnings
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")

# (input, the state the run must pass): the second run updates the real-time endpoint the first created
# (same data and settings: the gate lets an equal challenger through), before tuning raises the bar
RUNS = [({}, "Create endpoint"), ({}, "Update endpoint (blue-green)"), ({"deployment_mode": "serverless"}, None),
        ({"deployment_mode": "async"}, None), ({"deployment_mode": "batch"}, None), ({"tuning": True}, None)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stage", default="dev")
    args = parser.parse_args(argv)
    logging.disable(logging.WARNING)
    warnings.simplefilter("ignore")
    from tools.assembly import synth
    from tools.offline.runner import OfflineStage

    with tempfile.TemporaryDirectory() as outdir:
        synth(args.stage, Path(outdir))
        with OfflineStage(Path(outdir), args.stage) as stage:
            if stage.approval_rules:
                print("This stage waits for manual approval; run the report on a stage without it.", file=sys.stderr)
                return 2
            failed = []
            for run_input, expected in RUNS:
                result = stage.run(run_input)
                missed = expected is not None and expected not in result.visited()
                print(f"run {run_input or '{}'}: {result.status}" + (f" without {expected!r}" if missed else "")
                      + (f" ({result.error}: {(result.cause or '')[:200]})" if result.status != "SUCCEEDED" else ""))
                if result.status != "SUCCEEDED" or missed:
                    failed.append(run_input)
            report = stage.iam_report()
    for role in sorted(set(report["called"]) | set(report["unused"])):
        print(f"\n{role}")
        print("  called:  " + ", ".join(report["called"].get(role, [])))
        if role in report["missing"]:
            print("  NOT ALLOWED: " + ", ".join(report["missing"][role]))
        print("  unused:  " + ", ".join(report["unused"].get(role, [])))
    print(f"\n{sum(len(v) for v in report['missing'].values())} call(s) not allowed by the caller's policy; "
          f"{len(failed)} of {len(RUNS)} run(s) failed or missed their path")
    return 1 if report["missing"] or failed else 0


if __name__ == "__main__":
    sys.exit(main())
