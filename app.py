#!/usr/bin/env python3
"""CDK entry point and the only place that reads context or environment.

    cdk synth -c stage=dev        # one stage (default: dev)
    cdk synth -c stage=dev,prod   # several
    cdk synth -c stage=all        # every config/*.yaml
    cdk synth -c config_dir=/path/to/configs -c stage=prod

Configuration is validated before the CDK app exists: a bad config exits with status 1,
one message on stderr, and nothing written to cdk.out.
"""

from __future__ import annotations

import json
import os
import sys

from pathlib import Path

from mlops.config import CONFIG_DIR, ConfigError, load_stages


def _cli_context() -> dict:
    # The CLI passes -c values in CDK_CONTEXT_JSON; read it here so configs are
    # validated before aws_cdk (and its ~5 s jsii start-up) is even imported.
    context = json.loads(os.environ.get("CDK_CONTEXT_JSON") or "{}")
    overflow = os.environ.get("CONTEXT_OVERFLOW_LOCATION_ENV")  # large contexts go to a file
    if overflow and os.path.exists(overflow):
        with open(overflow, encoding="utf-8") as handle:
            context.update(json.load(handle))
    return context


def main() -> int:
    context = _cli_context()
    config_dir = Path(context.get("config_dir") or CONFIG_DIR)
    try:
        configs = load_stages(context.get("stage"), config_dir)
    except ConfigError as error:
        print(f"Configuration error: {error}", file=sys.stderr)
        return 1

    import aws_cdk as cdk

    from mlops.nag import register_checks
    from mlops.stacks.stage import build

    app = cdk.App()
    register_checks(app)
    build(app, configs)
    app.synth()
    return 0


if __name__ == "__main__":
    sys.exit(main())
