"""Print what `make synth` produced: stacks, resource counts and the gate results.

    python -m tools.summary cdk.out
"""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

from tools.assembly import acknowledgements, read_stacks, validation_violations
from tools.lint import lint_template


def main(outdir: Path) -> int:
    stacks = read_stacks(outdir)
    print(f"\n{'stage':<8}{'stack':<36}{'resources':>10}  protected  cfn-lint")
    lint_problems = 0
    for stack in stacks:
        findings = lint_template(stack.template)
        lint_problems += len(findings)
        resources = len(stack.template.get("Resources", {}))
        verdict = "ok" if not findings else f"{len(findings)} finding(s)"
        print(f"{stack.stage:<8}{stack.stack_name:<36}{resources:>10}  {'yes' if stack.termination_protection else 'no':<9}  {verdict}")
        for finding in findings:
            print(f"    {finding}")
    violations = validation_violations(outdir)
    acks = acknowledgements(outdir)
    by_rule = Counter(ack.finding.split("[", 1)[0] for ack in acks)
    total = sum(len(stack.template.get("Resources", {})) for stack in stacks)
    print(f"\n{len(stacks)} stacks, {total} resources")
    print(f"cdk-nag AwsSolutions: {len(violations)} unacknowledged finding(s); {len(acks)} acknowledged ("
          + ", ".join(f"{rule} x{count}" for rule, count in sorted(by_rule.items())) + ")")
    print(f"cfn-lint (state machine definitions resolved): {lint_problems} finding(s)")
    return 1 if violations or lint_problems else 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1] if len(sys.argv) > 1 else "cdk.out")))
