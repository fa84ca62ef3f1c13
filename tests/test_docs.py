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


def test_configuration_reference_and_schema_are_generated_from_the_models() -> None:
    import json

    from tools import config_docs

    assert (REPO / "docs" / "configuration.md").read_text() == config_docs.markdown(), \
        "docs/configuration.md is stale: run `make docs`"
    assert json.loads((REPO / "docs" / "stage-config.schema.json").read_text()) == config_docs.schema(), \
        "docs/stage-config.schema.json is stale: run `make docs`"


def test_every_config_field_has_a_description() -> None:
    from tools import config_docs

    schema = config_docs.schema()
    undocumented = [f"{model}.{name}" for model, definition in schema["$defs"].items()
                    for name, field in definition.get("properties", {}).items() if not field.get("description")]
    undocumented += [name for name, field in schema["properties"].items() if not field.get("description")]
    assert undocumented == [] or all(name.startswith(("QualityRule", "RecipeStep", "RowCount", "NoDuplicate",
                                                       "Completeness", "Range", "AllowedValues", "RemoveMissing",
                                                       "FillMissing", "DeleteColumns", "RemoveDuplicate", "LowerCase",
                                                       "Trim")) for name in undocumented), undocumented


def test_every_config_file_points_editors_at_the_schema() -> None:
    for path in sorted((REPO / "config").glob("*.yaml")):
        assert path.read_text().startswith("# yaml-language-server: $schema=../docs/stage-config.schema.json\n"), path


def test_readme_quotes_what_make_synth_prints(cloud_assembly_dir: Path) -> None:
    """The README's `make synth` sample is the summary of the stages in config/ (the tests'
    extra `mm` stage left out), as tools/summary.py renders it; cfn-lint's column is "ok"
    because tests/test_cfn_lint.py requires zero findings on every template."""
    from tools.summary import render

    readme = (REPO / "README.md").read_text()
    start = readme.index("<!-- make-synth")
    quoted = readme[readme.index("```\n", start) + 4:readme.index("```\n<!-- /make-synth -->")]
    stages = sorted(path.stem for path in (REPO / "config").glob("*.yaml"))
    expected, passed = render(cloud_assembly_dir, stages, lint=False)
    assert passed
    assert quoted == expected, "README's `make synth` sample is stale: paste what `make synth` prints"


def test_readme_stays_short_and_names_no_issue_numbers() -> None:
    import re

    readme = (REPO / "README.md").read_text()
    assert len(readme.splitlines()) <= 300
    for path in [REPO / "README.md", *(REPO / "docs").glob("*.md"), *(REPO / "mlops").rglob("*.py"),
                 *(REPO / "lambda").rglob("*.py"), *(REPO / "jobs").rglob("*.py"), *(REPO / "tools").rglob("*.py"),
                 *(REPO / "tests").glob("*.py"), *(REPO / "scripts").glob("*.py"), REPO / "Makefile"]:
        assert not re.search(r"\bissue #?\d+|\(#\d+\)", path.read_text()), path
