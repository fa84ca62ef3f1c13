"""Check every Task's Parameters against botocore's service models, offline.

Step Functions passes a Task's Parameters to the service API as the request. A wrong
member name, a missing required member, a wrong type or an enum value the API does not
know would otherwise surface only at run time in a real account. botocore's
``ParamValidator`` checks names, required members and types; enum values are checked
here. ``.$`` members (resolved at run time) get a typed placeholder from the shape.
"""

from __future__ import annotations

import json

from typing import Any, Iterator

import botocore.session
from botocore.model import ListShape, MapShape, Shape, StructureShape
from botocore.validate import ParamValidator

# Step Functions service names that differ from botocore's.
SERVICE_NAMES = {"applicationautoscaling": "application-autoscaling", "sfn": "stepfunctions", "states": "stepfunctions"}
# Members Step Functions fills in or accepts in its own form for optimized integrations.
_SKIPPED = {("lambda", "Invoke"): {"Payload"}}


def _placeholder(shape: Shape) -> Any:
    if isinstance(shape, StructureShape):
        return {name: _placeholder(member) for name, member in shape.members.items() if name in shape.required_members}
    if isinstance(shape, ListShape):
        return [_placeholder(shape.member)]
    if isinstance(shape, MapShape):
        return {}
    return {"string": "placeholder", "integer": 1, "long": 1, "boolean": True, "double": 1.0, "float": 1.0,
            "timestamp": "2026-01-01T00:00:00Z", "blob": b""}.get(shape.type_name, "placeholder")


def _substitute(value: Any, shape: Shape | None) -> Any:
    """Replace ``key.$`` members with typed placeholders, recursively."""
    if isinstance(value, dict) and isinstance(shape, StructureShape):
        result = {}
        for key, item in value.items():
            name = key[:-2] if key.endswith(".$") else key
            member = shape.members.get(name)
            result[name] = _placeholder(member) if key.endswith(".$") and member is not None else _substitute(item, member)
        return result
    if isinstance(value, dict) and isinstance(shape, MapShape):
        return {k[:-2] if k.endswith(".$") else k: ("placeholder" if k.endswith(".$") else _substitute(v, shape.value))
                for k, v in value.items()}
    if isinstance(value, list) and isinstance(shape, ListShape):
        return [_substitute(item, shape.member) for item in value]
    return value


def _enum_errors(value: Any, shape: Shape | None, path: str) -> Iterator[str]:
    if shape is None:
        return
    if isinstance(value, str) and getattr(shape, "enum", None) and value != "placeholder" and value not in shape.enum:
        yield f"{path}: {value!r} is not one of {', '.join(shape.enum)}"
    elif isinstance(value, dict) and isinstance(shape, StructureShape):
        for key, item in value.items():
            yield from _enum_errors(item, shape.members.get(key), f"{path}.{key}")
    elif isinstance(value, list) and isinstance(shape, ListShape):
        for index, item in enumerate(value):
            yield from _enum_errors(item, shape.member, f"{path}[{index}]")


def operation_of(resource: str) -> tuple[str, str] | None:
    """(botocore service, operation) a Task resource ARN calls, or None for other resources."""
    if not resource.startswith("arn:") or ":states:::" not in resource:
        return None
    integration = resource.split(":states:::", 1)[1]
    parts = integration.split(":")
    if parts[0] == "aws-sdk":
        service, action = parts[1], parts[2]
    else:
        service, action = parts[0], parts[1]
    action = action.split(".")[0]
    return SERVICE_NAMES.get(service, service), action[0].upper() + action[1:]


def task_parameter_errors(definition: dict[str, Any]) -> list[str]:
    """Problems with the Parameters of every Task state (Parallel/Map branches included)."""
    session = botocore.session.get_session()
    errors: list[str] = []
    for name, state in _states(definition):
        target = operation_of(state.get("Resource", "")) if state.get("Type") == "Task" else None
        if target is None:
            continue
        service, operation = target
        try:
            input_shape = session.get_service_model(service).operation_model(operation).input_shape
        except Exception as error:  # noqa: BLE001 - unknown service or operation is itself the finding
            errors.append(f"{name}: {service}:{operation} is not a known API ({error})")
            continue
        parameters = {k: v for k, v in state.get("Parameters", {}).items()
                      if k.removesuffix(".$") not in _SKIPPED.get((service, operation), set())}
        if service == "stepfunctions" and ":states:::states:" in json.dumps(state.get("Resource", "")):
            parameters = _optimized_states(parameters, input_shape)
        request = _substitute(parameters, input_shape)
        for skipped in _SKIPPED.get((service, operation), set()):
            if skipped in input_shape.members and skipped in input_shape.required_members:
                request[skipped] = _placeholder(input_shape.members[skipped])
        report = ParamValidator().validate(request, input_shape)
        if report.has_errors():
            errors.append(f"{name} ({service}:{operation}): {report.generate_report()}")
        errors += [f"{name} ({service}:{operation}): {problem}" for problem in _enum_errors(request, input_shape, "Parameters")]
    return errors


def _optimized_states(parameters: dict[str, Any], shape: Shape) -> dict[str, Any]:
    """The optimized Step Functions integration (``arn:aws:states:::states:startExecution``)
    names the API's camelCase members in PascalCase and takes ``Input`` as a JSON object
    (AWS docs, "Start a new AWS Step Functions state machine execution")."""
    members = {member.lower(): member for member in shape.members}
    converted = {}
    for key, value in parameters.items():
        bare, suffix = key.removesuffix(".$"), ".$" if key.endswith(".$") else ""
        name = members.get(bare.lower(), bare)
        converted[name + suffix] = json.dumps(value) if name == "input" and not suffix and not isinstance(value, str) else value
    return converted


def _states(definition: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for name, state in definition.get("States", {}).items():
        yield name, state
        for branch in state.get("Branches", []):
            yield from _states(branch)
        processor = state.get("ItemProcessor") or state.get("Iterator")
        if processor:
            yield from _states(processor)
