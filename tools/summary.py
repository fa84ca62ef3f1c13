"""Print what `make synth` produced: stacks, resource counts and the gate results.

    python -m tools.summary cdk.out

The README quotes this output between ``<!-- make-synth -->`` markers; ``tests/test_docs.py``
renders it from the tests' own assembly and fails when the quote is stale.
"""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

from tools.assembly import acknowledgements, read_stacks, validation_violations
from tools.lint import lint_template

PACKS = ("AwsSolutions", "NIST 800-53 rev 5", "HIPAA Security", "PCI DSS 3.2.1")  # mlops.nag.register_checks


def render(outdir: Path, stages: list[str] | None = None, *, lint: bool = True) -> tuple[str, bool]:
    """(the summary, whether every gate passed). ``lint=False`` skips cfn-lint (each template
    shows "ok"): tests/test_cfn_lint.py already requires zero findings on every template."""
    stacks = read_stacks(outdir, stages)
    lines = [f"{'stage':<8}{'stack':<36}{'resources':>10}  protected  cfn-lint"]
    lint_problems = 0
    for stack in stacks:
        findings = lint_template(stack.template) if lint else []
        lint_problems += len(findings)
        resources = len(stack.template.get("Resources", {}))
        verdict = "ok" if not findings else f"{len(findings)} finding(s)"
        lines.append(f"{stack.stage:<8}{stack.stack_name:<36}{resources:>10}  "
                     f"{'yes' if stack.termination_protection else 'no':<9}  {verdict}")
        lines += [f"    {finding}" for finding in findings]
    violations = validation_violations(outdir)
    if violations:
        lines += ["", f"{len(violations)} unacknowledged finding(s) (fix the resource, or acknowledge it with "
                  "mlops.nag.acknowledge on the construct, naming why the finding does not apply):"]
        lines += [line for violation in violations for line in _finding(violation)]
    acks = [ack for ack in acknowledgements(outdir) if stages is None or ack.construct_path.split("/")[1] in stages]
    by_pack: dict[str, Counter] = {}
    for ack in acks:  # "NIST.800.53.R5-LambdaDLQ" -> pack "NIST.800.53.R5", rule "LambdaDLQ"
        pack, rule = ack.finding.split("[", 1)[0].split("-", 1)
        by_pack.setdefault(pack, Counter())[rule] += 1
    total = sum(len(stack.template.get("Resources", {})) for stack in stacks)
    lines += ["", f"{len(stacks)} stacks, {total} resources",
              f"cdk-nag ({', '.join(PACKS)}) and CloudFormation validation: {len(violations)} unacknowledged "
              f"finding(s); {len(acks)} acknowledged:"]
    lines += [f"  {pack}: " + ", ".join(f"{rule} x{count}" for rule, count in sorted(by_pack[pack].items()))
              for pack in sorted(by_pack)]
    lines += [f"cfn-lint (state machine definitions resolved): {lint_problems} finding(s)"]
    return "\n".join(lines) + "\n", not (violations or lint_problems)


def _finding(violation: dict) -> list[str]:
    """One unacknowledged finding: the rule (with what it applies to), where, and what it means."""
    lines = [f"  {violation['ruleName']} ({violation.get('severity', 'error')})"]
    lines += [f"    at {construct['constructPath']}" for construct in violation.get("violatingConstructs", [])]
    lines.append(f"    why: {violation.get('description', '').strip()}")
    if violation.get("fix"):
        lines.append(f"    fix: {violation['fix']}")
    return lines


def main(outdir: Path) -> int:
    text, passed = render(outdir)
    print("\n" + text, end="")
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1] if len(sys.argv) > 1 else "cdk.out")))
