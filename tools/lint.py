"""cfn-lint gate for synthesized templates, state machine definitions included.

CDK emits ``AWS::StepFunctions::StateMachine.DefinitionString`` as ``Fn::Join`` over
literal JSON fragments and Ref/GetAtt tokens. cfn-lint validates a definition (rule
E3601) only when it is a literal string and skips the join silently, so
``resolve_definitions`` substitutes typed placeholders for the tokens and hands
cfn-lint the literal JSON it would otherwise never see. ``definition_graph_errors``
adds the check neither cfn-lint nor CDK makes: every transition names a state that
exists and every state is reachable.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Iterator

# CDK adds DependsOn that CloudFormation would infer anyway (W3005); noise on CDK output.
IGNORED_CHECKS = ["W3005"]
LINT_REGIONS = ["us-east-1", "eu-west-1"]

_PSEUDO = {
    "AWS::Partition": "aws",
    "AWS::Region": "us-east-1",
    "AWS::AccountId": "123456789012",
    "AWS::URLSuffix": "amazonaws.com",
    "AWS::StackName": "placeholder-stack",
}


@dataclass(frozen=True)
class Finding:
    rule: str
    level: str  # "Error" | "Warning" | "Informational"
    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.rule} [{self.level}] {self.path}: {self.message}"


def _placeholder(token: Any, mappings: dict[str, Any] | None = None) -> str:
    """A plain-string stand-in for an intrinsic inside a definition string. ``Fn::FindInMap``
    on ``AWS::Region`` resolves to the lint region's real value (an image URI, say), so the
    literal definition still carries what the mapping provides."""
    if isinstance(token, str):
        return token
    if not isinstance(token, dict) or len(token) != 1:
        raise ValueError(f"unexpected token in state machine definition: {token!r}")
    (function, argument), = token.items()
    if function == "Ref":
        return _PSEUDO.get(argument, argument)
    if function == "Fn::GetAtt":
        resource, attribute = argument if isinstance(argument, list) else argument.split(".", 1)
        if attribute.endswith("Arn"):
            return f"arn:aws:placeholder:us-east-1:123456789012:resource:{resource}"
        return f"{resource}.{attribute}"
    if function == "Fn::Join":
        separator, parts = argument
        return separator.join(_placeholder(part, mappings) for part in parts)
    if function == "Fn::FindInMap" and mappings is not None:
        name, top, second = (_placeholder(part, mappings) for part in argument)
        return str(mappings.get(name, {}).get(top, {}).get(second, "placeholder"))
    if function == "Fn::Select":
        return "placeholder"
    if function in ("Fn::GetStackOutput", "Fn::ImportValue", "Fn::Sub", "Fn::FindInMap", "Fn::Split"):
        return "placeholder"
    raise ValueError(f"unsupported intrinsic {function} in state machine definition")


def resolve_definitions(template: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``template`` whose state machine definitions are literal JSON strings."""
    resolved = copy.deepcopy(template)
    for resource in resolved.get("Resources", {}).values():
        if resource.get("Type") != "AWS::StepFunctions::StateMachine":
            continue
        properties = resource.get("Properties", {})
        definition = properties.get("DefinitionString")
        if isinstance(definition, dict):
            properties["DefinitionString"] = _placeholder(definition, resolved.get("Mappings", {}))
    # Mappings used only inside definitions are now inlined; drop them so cfn-lint does not
    # report them unused (W7001). A mapping used nowhere at all is still reported.
    remaining = json.dumps(resolved.get("Resources", {})) + json.dumps(resolved.get("Outputs", {}))
    for name in list(resolved.get("Mappings", {})):
        if f'"{name}"' not in remaining and f'"{name}"' in json.dumps(template.get("Resources", {})):
            del resolved["Mappings"][name]
    if "Mappings" in resolved and not resolved["Mappings"]:
        del resolved["Mappings"]
    return resolved


def state_machine_definitions(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Logical id -> parsed (placeholder-resolved) definition of every state machine."""
    resolved = resolve_definitions(template)
    return {
        logical_id: json.loads(resource["Properties"]["DefinitionString"])
        for logical_id, resource in resolved.get("Resources", {}).items()
        if resource.get("Type") == "AWS::StepFunctions::StateMachine"
        and isinstance(resource.get("Properties", {}).get("DefinitionString"), str)
    }


def _transitions(state: dict[str, Any]) -> Iterator[str]:
    if "Next" in state:
        yield state["Next"]
    if "Default" in state:
        yield state["Default"]
    for choice in state.get("Choices", []):
        if "Next" in choice:
            yield choice["Next"]
    for catcher in state.get("Catch", []):
        yield catcher["Next"]


def definition_graph_errors(definition: dict[str, Any], where: str = "") -> list[str]:
    """Dangling transitions and unreachable states, recursively into Parallel/Map."""
    states: dict[str, Any] = definition.get("States", {})
    errors: list[str] = []
    start = definition.get("StartAt")
    if start not in states:
        errors.append(f"{where}StartAt {start!r} names no state")
    reachable: set[str] = set()
    frontier = [start] if start in states else []
    while frontier:
        name = frontier.pop()
        if name in reachable:
            continue
        reachable.add(name)
        for target in _transitions(states[name]):
            if target not in states:
                errors.append(f"{where}state {name!r} transitions to missing state {target!r}")
            else:
                frontier.append(target)
    errors += [f"{where}state {name!r} is unreachable" for name in states if name not in reachable]
    for name, state in states.items():
        for index, branch in enumerate(state.get("Branches", [])):
            errors += definition_graph_errors(branch, f"{where}{name}.Branches[{index}]: ")
        processor = state.get("ItemProcessor") or state.get("Iterator")
        if processor:
            errors += definition_graph_errors(processor, f"{where}{name}.ItemProcessor: ")
    return errors


@lru_cache(maxsize=4)
def _runner(regions: tuple[str, ...], ignored: tuple[str, ...]):  # noqa: ANN202 - cfnlint.runner.Runner
    """One cfn-lint runner per configuration: building it loads every rule and the data files the
    rules read (~0.4 s, more than linting a small template), so the templates of a session share it
    (cfn-lint's own CLI lints all its templates with one)."""
    from cfnlint.config import ConfigMixIn, ManualArgs
    from cfnlint.runner import Runner

    return Runner(ConfigMixIn(**ManualArgs(regions=list(regions), ignore_checks=list(ignored))))


def lint_template(template: dict[str, Any], *, resolve: bool = True) -> list[Finding]:
    """cfn-lint findings (errors and warnings) for one template, plus graph errors. The same steps
    as ``cfnlint.api.lint`` (decode the text, then validate), with a runner built once."""
    from cfnlint.decode.decode import decode_str

    subject = resolve_definitions(template) if resolve else template
    decoded, errors = decode_str(json.dumps(subject))
    matches = errors or ([] if decoded is None else
                         list(_runner(tuple(LINT_REGIONS), tuple(IGNORED_CHECKS)).validate_template(decoded)))
    findings = [
        Finding(
            rule=match.rule.id,
            level=match.rule.severity.capitalize(),
            path="/".join(str(part) for part in match.path) if match.path else "",
            message=match.message,
        )
        for match in matches
    ]
    if resolve:
        for logical_id, definition in state_machine_definitions(template).items():
            findings += [
                Finding(rule="ASL-GRAPH", level="Error", path=f"Resources/{logical_id}", message=error)
                for error in definition_graph_errors(definition)
            ]
    return findings
