"""Test suite (a regular package: smdebug-rulesconfig, pulled in by sagemaker-core, installs a top-level `tests` package that would otherwise shadow this one)."""
