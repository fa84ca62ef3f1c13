"""Two teams in one account: two configs that differ only in ``project`` (same stage name,
same pinned account and region) synthesize into one app, and no physical name, export, alarm
or name a state machine builds at run time is shared between them."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import PINNED_ENVIRONMENT, REPO_ROOT, model_monitor_config, shared_assembly
from tools.assembly import StackTemplate

PROJECTS = ("team-a", "team-b")
# A third stage with the longest project and stage names the config allows (31 characters of
# `<project>-<stage>`), for the length limits; it tunes under its own short stem (mlops.config.tuning_stem).
LONG_PROJECT, LONG_STAGE = "analytics-platform-x", "experiment"

# Keys ending in "Name" that are not the name of something the stack creates: a metric, a
# variant or channel inside one resource, a reference to another resource (checked where that
# resource is created). Values under these keys may repeat across projects.
NOT_PHYSICAL_NAMES = {
    "MetricName": "a metric inside the project's own namespace or dimensions",
    "VariantName": "the production variant inside the project's own endpoint config",
    "ChannelName": "an input channel of the project's own job",
    "OutputName": "an output of the project's own processing job",
    "InputName": "an input of the project's own processing job",
    "AttributeName": "an attribute of the project's own resource",
    "FeatureName": "a column of the project's own feature group",
    "RecordIdentifierFeatureName": "a column of the project's own feature group",
    "EventTimeFeatureName": "a column of the project's own feature group",
    "TrialComponentDisplayName": "a label inside the project's own experiment",
    "DisplayName": "a label shown with the project's own resource",
    "KeyName": "a key inside the project's own resource",
    "ParameterName": "a parameter of the project's own resource",
    "PolicyName": "an inline policy: named within its own role",
}

# Names both projects may use because the thing named is one per account and sharing it is
# safe. Empty today: add an entry only with the reason sharing cannot hurt. (Shared but not
# named by the app, so not collected: the service-linked roles SageMaker and Application Auto
# Scaling create, and the StepFunctionsGetEventsForSageMaker* rules Step Functions manages for
# .sync jobs; both projects' policies name them, as docs/architecture.md says.)
SHARED_SINGLETONS: dict[str, str] = {}


def _render(value: Any, stack_name: str) -> str:
    """A CloudFormation value as text; intrinsics become placeholders that say which project's
    resource they point to (a Ref in team-a's stack names team-a's resource)."""
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float, bool)):
        return json.dumps(value)
    if isinstance(value, dict) and len(value) == 1:
        (function, argument), = value.items()
        if function == "Ref":
            return f"<{argument}>" if argument.startswith("AWS::") else f"<{stack_name}:{argument}>"
        if function == "Fn::GetAtt":
            target = argument if isinstance(argument, str) else ".".join(argument)
            return f"<{stack_name}:{target}>"
        if function == "Fn::Join":
            separator, parts = argument
            return separator.join(_render(part, stack_name) for part in parts)
        if function == "Fn::ImportValue":
            return f"<import:{_render(argument, stack_name)}>"
        if function == "Fn::GetStackOutput":
            return f"<output:{argument['StackName']}:{argument['OutputName']}>"
        if function == "Fn::FindInMap":  # the stack's image table: the same URI for every project
            return "<" + ":".join(_render(part, stack_name) for part in argument) + ">"
    raise ValueError(f"{stack_name}: no rendering for {value!r}")


# Containers whose "Name" keys name something other than a resource: hyperparameter ranges,
# metric dimensions, tags, job arguments, the rules and columns of a DataBrew ruleset, a Glue
# job's type, IAM policy documents (conditions such as iam:AWSServiceName).
NOT_NAME_CONTAINERS = {"ContinuousParameterRanges", "IntegerParameterRanges", "CategoricalParameterRanges",
                       "Dimensions", "Tags", "Arguments", "Rules", "ColumnSelectors", "Command",
                       "PolicyDocument", "AssumeRolePolicyDocument"}
_PSEUDO = ({"Ref": "AWS::Region"}, {"Ref": "AWS::AccountId"}, {"Ref": "AWS::Partition"}, {"Ref": "AWS::URLSuffix"})


def _is_literal(value: Any) -> bool:
    """A name the stack writes down itself (or joins from literals and pseudo parameters), not a
    reference to a resource named elsewhere."""
    if isinstance(value, str):
        return True
    if isinstance(value, dict) and list(value) == ["Fn::Join"]:
        return all(_is_literal(part) or part in _PSEUDO for part in value["Fn::Join"][1])
    return False


# The literal head of a name an intrinsic builds: States.Format('<head>-{}-{}', ...)
_FORMAT_HEAD = re.compile(r"^States\.Format\('([^{']*)")


def _names(value: Any, path: str, stack_name: str) -> Iterator[tuple[str, str]]:
    """``(path, name)`` for every ``*Name`` key under ``value`` with a literal name (or, in a
    state machine definition, the literal head of a ``States.Format`` name)."""
    if isinstance(value, list):
        for index, item in enumerate(value):
            yield from _names(item, f"{path}[{index}]", stack_name)
        return
    if not isinstance(value, dict) or any(key == "Ref" or key.startswith("Fn::") for key in value):
        return
    for key, item in value.items():
        where = f"{path}.{key}"
        if key in NOT_NAME_CONTAINERS:
            continue
        if key.endswith("Name") and key not in NOT_PHYSICAL_NAMES and _is_literal(item):
            yield where, _render(item, stack_name)
        elif (key.endswith("Name.$") and key[:-2] not in NOT_PHYSICAL_NAMES and isinstance(item, str)
              and (head := _FORMAT_HEAD.match(item)) and head.group(1)):
            yield where, head.group(1)  # States.Format('{}-{}-{}', $.run.names.train, ...): see "stem"
        else:
            yield from _names(item, where, stack_name)


def physical_names(stack: StackTemplate) -> Iterator[tuple[str, str]]:
    """``(where, name)`` for every name ``stack`` gives something: the stack itself, every
    ``*Name`` property with a literal value, every export."""
    yield f"{stack.key} stack name", stack.stack_name
    for logical_id, resource in stack.template["Resources"].items():
        yield from _names(resource.get("Properties") or {}, f"{stack.key}/{logical_id} {resource['Type']}", stack.stack_name)
    for output_id, output in stack.template.get("Outputs", {}).items():
        if "Export" in output:
            yield f"{stack.key} output {output_id} Export.Name", _render(output["Export"]["Name"], stack.stack_name)


# Keys of Lambda payloads in the definitions whose values name things the handlers create or
# touch (the run's names are derived from "stem"; "prefix" ending in "/" is an S3 key prefix).
PAYLOAD_NAME_KEYS = ("stem", "prefix", "experiment", "endpoint", "model_package_group")


def run_time_names(stack: StackTemplate) -> Iterator[tuple[str, str]]:
    """``(where, name)`` for every name a state machine passes to a service: literal ``*Name``
    parameters, the literal head of ``States.Format`` names, and the names handed to handlers,
    among them the stem "Prepare run" derives the run's job, model, endpoint-config and trial
    names from."""
    for logical_id, resource in stack.template["Resources"].items():
        if resource["Type"] != "AWS::StepFunctions::StateMachine":
            continue
        definition = json.loads(_render(resource["Properties"]["DefinitionString"], stack.stack_name))
        where = f"{stack.key}/{logical_id}"
        yield from _names(definition, where, stack.stack_name)
        for state_name, state in definition["States"].items():
            payload = (state.get("Parameters") or {}).get("Payload")
            if not isinstance(payload, dict):
                continue
            for key, value in {**payload, **(payload.get("defaults") or {})}.items():
                if key in PAYLOAD_NAME_KEYS and isinstance(value, str) and not value.endswith("/"):
                    yield f"{where} {state_name!r} Payload {key}", value


def _synth_two_projects(outdir: Path, config_root: Path) -> list:
    """Synthesize config/dev.yaml as ``team-a`` and as ``team-b`` (and the long-named stage),
    each from its own config directory as two teams' checkouts would hold them, into one app
    with cdk-nag on. All use the Model Monitor backend and manual approval, so every named
    thing the app can create exists. Returns the configs."""
    import aws_cdk as cdk

    from mlops.config import load_stage_config
    from mlops.nag import register_checks
    from mlops.stacks.stage import build
    from tools.assembly import cdk_json_context

    dev = yaml.safe_load((REPO_ROOT / "config" / "dev.yaml").read_text())
    variant = {**model_monitor_config(dev), "environment": dict(PINNED_ENVIRONMENT),
               "pipeline": {**dev["pipeline"], "manual_approval": True}}
    long = variant
    configs = []
    for project, stage, raw in [*((project, "dev", variant) for project in PROJECTS), (LONG_PROJECT, LONG_STAGE, long)]:
        directory = config_root / project
        directory.mkdir(parents=True, exist_ok=True)
        (directory / f"{stage}.yaml").write_text(yaml.safe_dump({**raw, "project": project, "stage": stage}))
        configs.append(load_stage_config(stage, directory))
    app = cdk.App(outdir=str(outdir), context=cdk_json_context())
    register_checks(app)  # an acknowledgement that only matched one project's names would fail here
    build(app, configs)
    app.synth()
    return configs


@pytest.fixture(scope="module")
def two_projects(tmp_path_factory: pytest.TempPathFactory, pytestconfig: pytest.Config,
                 worker_id: str) -> dict[str, list[StackTemplate]]:
    """``<project>-<stage>`` -> that stage's stacks, synthesized once (conftest's ``shared_assembly``:
    the configs are derived here, so this file is an input of the synth)."""
    from tools.assembly import read_stacks

    prefixes = [f"{project}-dev" for project in PROJECTS] + [f"{LONG_PROJECT}-{LONG_STAGE}"]
    outdir = shared_assembly(tmp_path_factory, pytestconfig, worker_id, "two-projects.out",
                             lambda out: _synth_two_projects(out, tmp_path_factory.mktemp("two-projects-config")),
                             inputs=Path(__file__).read_bytes())
    stacks = read_stacks(outdir)
    return {prefix: [stack for stack in stacks if stack.stack_name.startswith(f"{prefix}-")] for prefix in prefixes}


def clashes(first: list[tuple[str, str]], second: list[tuple[str, str]]) -> list[str]:
    """Names in both lists (other than the allowed singletons), with where each side uses them."""
    seen = {name: where for where, name in first}
    return sorted(f"{name!r}: {seen[name]} and {where}" for where, name in second
                  if name in seen and name not in SHARED_SINGLETONS)


def carries_prefix(name: str, prefix: str) -> bool:
    """``name`` is ``<prefix>`` or starts with ``<prefix>-`` (Glue and Athena spell it with
    underscores; KMS aliases start with ``alias/``), or refers to a resource of a stack named
    ``<prefix>-...`` (whose generated physical name starts with that stack's name)."""
    name = name.removeprefix("alias/")
    glue = prefix.replace("-", "_")
    return (name in (prefix, glue) or name.startswith((f"{prefix}-", f"{glue}_", f"<{prefix}-", f"<import:{prefix}-"))
            or name in SHARED_SINGLETONS)


def _all(stacks: list[StackTemplate], collect) -> list[tuple[str, str]]:  # noqa: ANN001 - one of the collectors above
    return [found for stack in stacks for found in collect(stack)]


def test_each_project_gets_its_own_stage_and_stacks(two_projects: dict[str, list[StackTemplate]]) -> None:
    """Stages that share a stage name are selected as ``'<project>-<stage>/*'``; a stage alone
    keeps ``'<stage>/*'`` (what the Makefile's deploy, diff and destroy use)."""
    assert {prefix: sorted({stack.stage for stack in stacks}) for prefix, stacks in two_projects.items()} == {
        "team-a-dev": ["team-a-dev"], "team-b-dev": ["team-b-dev"], f"{LONG_PROJECT}-{LONG_STAGE}": [LONG_STAGE]}
    for prefix, stacks in two_projects.items():
        assert sorted(stack.stack_name for stack in stacks) == [f"{prefix}-{part}" for part in ("data", "operations", "pipeline")]


def test_the_check_sees_every_kind_of_name(two_projects: dict[str, list[StackTemplate]]) -> None:
    """A collector that silently found nothing would pass the clash tests below."""
    physical = " ".join(where for where, _ in _all(two_projects["team-a-dev"], physical_names))
    for kind in ("stack name", "Export.Name", "AWS::CloudWatch::Alarm.AlarmName", "AWS::CloudWatch::CompositeAlarm.AlarmName",
                 "StateMachineName", "DashboardName", "BudgetName", "FeatureGroupName", "ModelPackageGroupName",
                 "AWS::Glue::Database.DatabaseInput.Name", "AWS::Glue::Crawler.Name", "AWS::Glue::Job.Name",
                 "AWS::DataBrew::Job.Name", "AWS::DataBrew::Recipe.Name", "AWS::KMS::Alias.AliasName"):
        assert kind in physical, kind
    run_time = " ".join(where for where, _ in _all(two_projects["team-a-dev"], run_time_names))
    for kind in ("ProcessingJobName.$", "EndpointName", "ModelPackageGroupName", "Payload stem", "Payload prefix", "Payload experiment"):
        assert kind in run_time, kind


@pytest.mark.parametrize("collect", [physical_names, run_time_names], ids=["physical", "run-time"])
def test_no_name_is_shared_between_projects(two_projects: dict[str, list[StackTemplate]], collect) -> None:  # noqa: ANN001
    """Physical names, exports, alarm names and the names the state machines build."""
    named = {prefix: _all(stacks, collect) for prefix, stacks in two_projects.items()}
    prefixes = sorted(named)
    assert [clash for i, first in enumerate(prefixes) for second in prefixes[i + 1:]
            for clash in clashes(named[first], named[second])] == []


@pytest.mark.parametrize("collect", [physical_names, run_time_names], ids=["physical", "run-time"])
def test_every_name_carries_the_project_prefix(two_projects: dict[str, list[StackTemplate]], collect) -> None:  # noqa: ANN001
    for prefix, stacks in two_projects.items():
        assert [f"{where}: {name!r}" for where, name in _all(stacks, collect) if not carries_prefix(name, prefix)] == []


# The services' length limits on each kind of name the app writes down ("where" ends with the
# key; a Glue or DataBrew ``Name`` is looked up with its resource type).
NAME_LIMITS = {
    "stack name": 128, "Export.Name": 255, "AlarmName": 255, "DashboardName": 255, "BudgetName": 100, "AliasName": 256,
    "StateMachineName": 80, "FeatureGroupName": 64, "ModelPackageGroupName": 63, "EndpointName": 63,
    "TableName": 255, "DatabaseName": 255, "DatasetName": 255, "JobName": 255, "StackName": 128,
    "AWS::Glue::Database.DatabaseInput.Name": 255, "AWS::Glue::Crawler.Name": 255, "AWS::Glue::Job.Name": 255,
    "AWS::Glue::SecurityConfiguration.Name": 255, "AWS::DataBrew::Dataset.Name": 255, "AWS::DataBrew::Ruleset.Name": 255,
    "AWS::DataBrew::Recipe.Name": 255, "AWS::DataBrew::Job.Name": 240, "AWS::DataBrew::Job.Recipe.Name": 255,
    # in definitions: the Glue crawler and DataBrew jobs the data run starts
    "Parameters.Name": 240,
    # run time: the head of States.Format('<head>-{8 hex}-{retry}'), a SageMaker job name
    "ProcessingJobName.$": 63 - len("-0123abcd-99"),
    # the Model Monitor schedules and job definitions the handler names <prefix>-model-quality, <prefix>-mq-<run id>
    "Payload prefix": 63 - len("-model-quality"),
    "Payload endpoint": 63, "Payload model_package_group": 63, "Payload experiment": 120,
    # prepare_run: derive_name keeps <stem>- whole within its readable part (63 - 8 reserved - 6 hash - 1)
    "Payload stem": 63 - 8 - 6 - 1 - 1,
}


def _limit(where: str) -> int:
    for kind, limit in sorted(NAME_LIMITS.items(), key=lambda item: -len(item[0])):
        if where.endswith(kind):
            return limit
    raise AssertionError(f"no length limit known for {where}: add it to NAME_LIMITS")


def test_names_fit_the_services_limits_with_the_longest_project_and_stage(two_projects: dict[str, list[StackTemplate]]) -> None:
    assert len(f"{LONG_PROJECT}-{LONG_STAGE}") == 31  # the longest the config allows
    for stacks in two_projects.values():
        for collect in (physical_names, run_time_names):
            named = [(where, name) for where, name in _all(stacks, collect) if not name.startswith("<")]  # generated by CloudFormation
            assert [f"{where}: {name!r} ({len(name)} > {_limit(where)})" for where, name in named
                    if len(name) > _limit(where)] == []


def test_the_run_names_prepare_run_derives_start_with_the_stem() -> None:
    """The stem reaches every job, model, endpoint-config and trial name of a run whole, so two
    projects' runs never share a name and the state machine's ``<prefix>-*`` IAM resources
    match; tuning job names (32 characters) start with the stage's tuning stem whole."""
    from mlops.config import tuning_stem
    from tests.conftest import load_lambda

    prepare_run = load_lambda("prepare_run")
    execution = prepare_run.Execution(id="arn:aws:states:eu-west-1:123456789012:execution:" + "x" * 80 + ":run",
                                      name="a-very-long-execution-name-" + "x" * 53)
    stems = [*(f"{project}-dev" for project in PROJECTS), f"{LONG_PROJECT}-{LONG_STAGE}"]
    for stem in stems:
        for kind in ("train", "eval", "model", "config", "transform", "baseline", "run"):
            name = prepare_run.derive_name(kind, stem, execution)
            assert name.startswith(f"{stem}-") and len(name) + len("-999-99") <= 63, name
    for stem in map(tuning_stem, stems):
        name = prepare_run.derive_name("hpo", stem, execution, limit=prepare_run.TUNING_NAME_LIMIT)
        assert name.startswith(f"{stem}-") and len(name) + len("-999-99") <= 32, name


def test_a_long_prefix_tunes_under_its_stem_and_may_start_those_jobs(two_projects: dict[str, list[StackTemplate]]) -> None:
    """The long-named stage tunes: prepare_run gets its tuning stem, and the training state
    machine may create, describe and stop the tuning jobs and the training jobs they start under
    that stem (the ``<prefix>-*`` resources would not match them); the short stages need neither."""
    import json

    from mlops.config import tuning_stem

    for prefix, stacks in two_projects.items():
        (pipeline,) = [stack for stack in stacks if stack.stack_name.endswith("-pipeline")]
        text = json.dumps(pipeline.template)
        stem = tuning_stem(prefix)
        for resource in (f"hyper-parameter-tuning-job/{stem}-*", f"training-job/{stem}-*"):
            assert resource in text, (prefix, resource)
        assert ("tuning_stem" in text) == (stem != prefix), prefix  # passed to prepare_run only when it differs


# -- canaries: the checks fail on a clash ---------------------------------------------------

def _stack(stage: str, name: str, resources: dict[str, Any], outputs: dict[str, Any] | None = None) -> StackTemplate:
    return StackTemplate(stage=stage, stack_id="Pipeline", stack_name=f"{name}-pipeline",
                         template={"Resources": resources, "Outputs": outputs or {}},
                         template_path=Path("unused"), termination_protection=False)


def test_canary_an_unprefixed_alarm_name_is_a_clash() -> None:
    def stack(project: str) -> StackTemplate:
        return _stack(f"{project}-dev", f"{project}-dev", {
            "Alarm": {"Type": "AWS::CloudWatch::Alarm", "Properties": {"AlarmName": "endpoint-5xx", "MetricName": "Invocation5XXErrors"}},
            "Group": {"Type": "AWS::SageMaker::ModelPackageGroup", "Properties": {"ModelPackageGroupName": f"{project}-dev-models"}},
        }, {"Bucket": {"Value": "x", "Export": {"Name": {"Fn::Join": ["-", ["raw-bucket", {"Ref": "AWS::Region"}]]}}}})

    a, b = (list(physical_names(stack(project))) for project in PROJECTS)
    assert [clash.split("': ")[0] for clash in clashes(a, b)] == ["'endpoint-5xx", "'raw-bucket-<AWS::Region>"]
    assert not carries_prefix("endpoint-5xx", "team-a-dev")


def test_canary_an_unprefixed_job_name_in_a_definition_is_a_clash() -> None:
    def stack(project: str) -> StackTemplate:
        definition = {"StartAt": "Drift", "States": {"Drift": {"Type": "Task", "End": True, "Parameters": {
            "ProcessingJobName.$": "States.Format('drift-{}', States.UUID())", "EndpointName": f"{project}-dev-endpoint"}}}}
        return _stack(f"{project}-dev", f"{project}-dev", {"Machine": {
            "Type": "AWS::StepFunctions::StateMachine",
            "Properties": {"DefinitionString": {"Fn::Join": ["", [json.dumps(definition)]]}}}})

    a, b = (list(run_time_names(stack(project))) for project in PROJECTS)
    assert [clash.split("': ")[0] for clash in clashes(a, b)] == ["'drift-"]
