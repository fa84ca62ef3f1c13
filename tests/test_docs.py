"""Generated parts of the docs stay current."""

from __future__ import annotations

from pathlib import Path

from tools.offline.service_rules import RULES, rules_markdown

REPO = Path(__file__).resolve().parent.parent


def test_offline_runs_doc_lists_every_service_rule_as_generated() -> None:
    doc = (REPO / "docs" / "offline-runs.md").read_text()
    start = doc.index("<!-- service-rules")
    block = doc[doc.index("-->\n", start) + 4:doc.index("<!-- /service-rules -->")]
    assert block == rules_markdown(), "docs/offline-runs.md is stale: paste tools.offline.service_rules.rules_markdown()"
    assert all(f"`{rule.id}`" in doc for rule in RULES)
