# Two commands for a newcomer: `make demo` / `make synth` and `make test`. Everything
# else is for people with an AWS account. All tools come pinned from this repo.
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV   := .venv
PY     := $(VENV)/bin/python
STAGE  ?= dev
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20
export CDK_DISABLE_CLI_TELEMETRY := true
# The pinned 2.x CLI (npm's `latest` 3.0 cannot read aws-cdk-lib 2.x assemblies),
# running the app with the venv's python.
CDK := PATH="$(CURDIR)/$(VENV)/bin:$$PATH" node_modules/.bin/cdk --no-notices

.PHONY: help demo iam-report schema docs graph bootstrap synth test snapshots aws-bootstrap deploy diff destroy bench bench-drift sample-data lock clean

help: ## list targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

$(VENV)/.installed: requirements.txt requirements-dev.txt constraints.txt
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt -c constraints.txt
	touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

bootstrap: $(VENV)/.installed node_modules/.installed ## create .venv and node_modules from the pins

EXAMPLE ?=
INPUT ?=
demo: bootstrap ## run the dev training pipeline end to end offline on the sample data (no AWS account); EXAMPLE=<name> runs config/examples/<name>.yaml, INPUT='<json>' is the execution input
	$(PY) scripts/demo.py $(if $(EXAMPLE),--example $(EXAMPLE),--stage $(STAGE)) $(if $(INPUT),--input '$(INPUT)')

synth: bootstrap ## synthesize every stage into cdk.out and print stacks, resources and gate results
	$(PY) -m mlops.config all  # a bad config stops here, leaving cdk.out untouched
	rm -rf cdk.out.next
	$(CDK) synth -c stage=all --quiet -o cdk.out.next
	@# a failed gate lists its findings and leaves the previous cdk.out (and the failed one in cdk.out.next)
	$(PY) -m tools.summary cdk.out.next
	rm -rf cdk.out && mv cdk.out.next cdk.out

test: bootstrap ## run the whole suite (config, nag, cfn-lint, snapshots, tags, assertions)
	$(PY) -m pytest -n auto --dist worksteal

snapshots: bootstrap ## rewrite the template snapshots after an intended change (review the diff)
	$(PY) -m pytest tests/test_snapshots.py --snapshot-update -q

aws-bootstrap: bootstrap ## `cdk bootstrap` the account/region of your credentials (once, before the first deploy)
	$(CDK) bootstrap -c stage=$(STAGE)

deploy: bootstrap ## deploy one stage: make deploy STAGE=dev (needs AWS credentials and `cdk bootstrap`)
	$(CDK) deploy -c stage=$(STAGE) '$(STAGE)/*'

diff: bootstrap ## diff one stage against what is deployed: make diff STAGE=dev
	$(CDK) diff -c stage=$(STAGE) '$(STAGE)/*'

destroy: bootstrap ## delete one stage's stacks: make destroy STAGE=dev (prod keeps its data)
	$(CDK) destroy -c stage=$(STAGE) '$(STAGE)/*'

bench: bootstrap ## print synth and test-suite timings (figures quoted in the README)
	$(PY) scripts/bench.py

bench-drift: bootstrap ## time the drift job (1M rows x 20 features) and measure its detection and false-alarm rates (docs/benchmarks.md)
	$(PY) scripts/bench_drift.py

iam-report: bootstrap ## run the pipeline offline in every mode and list called / not allowed / unused IAM actions per role
	$(PY) scripts/iam_report.py --stage $(STAGE)

schema: bootstrap ## rewrite docs/execution-input.schema.json from the prepare-run handler's input model
	$(PY) -c "import json; from tests.conftest import load_lambda; print(json.dumps(load_lambda('prepare_run').input_schema(), indent=2))" > docs/execution-input.schema.json

docs: schema ## regenerate the generated docs: configuration reference, config and execution-input JSON schemas
	$(PY) -m tools.config_docs

graph: synth ## render each stage's state machines to docs/<stage>-{data,training}.png (needs Debian's graphviz)
	$(PY) -m tools.graph cdk.out docs

sample-data: bootstrap ## re-export the bundled sample CSVs and regenerate the churn table (deterministic)
	$(PY) scripts/export_sample_data.py
	$(PY) scripts/make_churn_data.py

lock: ## re-resolve requirements*.txt without the old lock and rewrite constraints.txt
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	(echo "# Full lock of every Python package in .venv (regenerate: make lock). Used as -c constraints."; $(PY) -m pip freeze | grep -v '^-e') > constraints.txt

clean: ## remove generated output (keeps .venv and node_modules)
	rm -rf cdk.out cdk.out.next .pytest_cache .bench
