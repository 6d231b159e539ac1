"""CloudFormation templates read without AWS: the YAML with its short-form intrinsics (``!Ref``, ``!Sub``,
``!If``...), parameter values (defaults, or overrides checked against the parameter's rules), conditions,
and the intrinsics of a policy document resolved to what a deploy would produce.

Used by the static doctor (``rolechain doctor --templates``) and by the development tooling that builds
emulated resources from the templates' own definitions. Only what IAM policies and their conditions use
is resolved; anything else raises :class:`ConfigError` naming it, so a caller never decides on a guess.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from rolechain.errors import ConfigError

# Placeholders for what only a deploy knows; documentation-style account ids, never a real one.
HUB_ACCOUNT = "111111111111"
TARGET_ACCOUNT = "222222222222"
REGION = "us-east-1"
PARTITION = "aws"
NO_VALUE = object()  # AWS::NoValue: the property or list item is dropped


class _TemplateLoader(yaml.SafeLoader):
    """PyYAML's safe loader plus CloudFormation's short forms: ``!Name value`` becomes ``{"Fn::Name": value}``
    (``!Ref`` and ``!Condition`` keep their names; ``!GetAtt A.B`` becomes ``["A", "B"]``)."""


def _intrinsic(loader: _TemplateLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    value: Any
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
    if suffix in ("Ref", "Condition"):
        return {suffix: value}
    if suffix == "GetAtt" and isinstance(value, str):
        value = value.split(".", 1)
    return {f"Fn::{suffix}": value}


_TemplateLoader.add_multi_constructor("!", _intrinsic)


def load_template(path: str | Path, *, flag: str = "template") -> dict[str, Any]:
    """The template at ``path`` as plain data (intrinsics in their long form).

    Raises:
        ConfigError: naming ``flag`` and the file when it cannot be read, is not YAML, or is not a template
            (no ``Resources`` mapping).
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(flag, f"cannot read {path}: {exc.strerror}") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(flag, f"{path} is not UTF-8 text (byte {exc.start} cannot be decoded)") from exc
    try:
        data = yaml.load(text, Loader=_TemplateLoader)  # a SafeLoader subclass: no arbitrary objects
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError(flag, f"{path} is not valid YAML{where}: {getattr(exc, 'problem', exc)}") from exc
    if not isinstance(data, dict) or not isinstance(data.get("Resources"), dict):
        raise ConfigError(flag, f"{path} is not a CloudFormation template (it has no Resources mapping)")
    return data


@dataclass
class Stack:
    """A template as one deploy would see it: parameter values (defaults, then ``overrides``), pseudo
    parameters (placeholder account and region), conditions decided, and ``arns`` for ``GetAtt X.Arn``
    and ``Ref`` of resources that a caller knows (others resolve to a placeholder ARN naming the resource).

    Raises ConfigError (from the constructor) for an override of an unknown parameter, a value its
    AllowedPattern/AllowedValues refuse, or a parameter left without a value.
    """

    template: Mapping[str, Any]
    name: str = "template.yaml"
    overrides: Mapping[str, str] = field(default_factory=dict)
    account: str = HUB_ACCOUNT
    region: str = REGION
    partition: str = PARTITION
    stack_name: str = "rolechain"
    arns: Mapping[str, str] = field(default_factory=dict)
    placeholders: Mapping[str, str] = field(default_factory=dict)  # values of parameters without a default
    unknown_arn: str | None = None  # the ARN of a resource not in ``arns`` (default: a placeholder naming it)
    refs: Mapping[str, str] = field(default_factory=dict)  # Ref of resources whose Ref is no ARN (a name)

    def __post_init__(self) -> None:
        declared = self.template.get("Parameters") or {}
        if not isinstance(declared, Mapping) or not all(isinstance(spec, Mapping) for spec in declared.values()):
            raise ConfigError(self.name, "Parameters must map each name to its definition")
        unknown = sorted(set(self.overrides) - set(declared))
        if unknown:
            raise ConfigError("--parameter", f"{unknown[0]!r} is not a parameter of {self.name}")
        self.values: dict[str, Any] = {}
        for key, spec in declared.items():
            if key in self.overrides:
                raw = str(self.overrides[key])
                _check_parameter(self.name, key, spec, raw)
            elif "Default" in spec:
                raw = str(spec["Default"])
            elif key in self.placeholders:
                raw = self.placeholders[key]
            else:
                raise ConfigError("--parameter", f"{self.name}'s parameter {key} has no default: give {key}=VALUE")
            kind = str(spec.get("Type", "String"))
            self.values[key] = [part.strip() for part in raw.split(",")] if kind.startswith("CommaDelimited") else raw
        self._conditions: dict[str, bool] = {}
        self._deciding: set[str] = set()

    def pseudo(self) -> dict[str, str]:
        return {
            "AWS::Partition": self.partition,
            "AWS::Region": self.region,
            "AWS::AccountId": self.account,
            "AWS::StackName": self.stack_name,
            "AWS::URLSuffix": "amazonaws.com",
        }

    def condition(self, name: str) -> bool:
        """The value of the template's condition ``name``."""
        if name not in self._conditions:
            conditions = self.template.get("Conditions") or {}
            if not isinstance(conditions, Mapping) or name not in conditions:
                raise ConfigError(self.name, f"condition {name!r} is not defined")
            if name in self._deciding:
                raise ConfigError(self.name, f"condition {name!r} depends on itself")
            self._deciding.add(name)
            try:
                self._conditions[name] = bool(self.resolve(conditions[name]))
            finally:
                self._deciding.discard(name)
        return self._conditions[name]

    def resource_arn(self, logical_id: str) -> str:
        if logical_id in self.arns:
            return self.arns[logical_id]
        if self.unknown_arn is not None:
            return self.unknown_arn
        return f"arn:{self.partition}:cloudformation:{self.region}:{self.account}:placeholder/{logical_id}"

    def ref(self, name: str) -> Any:
        if name == "AWS::NoValue":
            return NO_VALUE
        pseudo = self.pseudo()
        if name in pseudo:
            return pseudo[name]
        if name in self.values:
            return self.values[name]
        if name in self.refs:
            return self.refs[name]
        if name in (self.template.get("Resources") or {}):
            return self.resource_arn(name)
        raise ConfigError(self.name, f"Ref to {name!r}, which is neither a parameter nor a resource")

    def _sub(self, text: str, variables: Mapping[str, Any]) -> str:
        def value(match: re.Match[str]) -> str:
            name = match.group(1)
            if name.startswith("!"):  # ${!Literal}
                return "${" + name[1:] + "}"
            if name in variables:
                return str(variables[name])
            if "." in name:
                return self.resource_arn(name.split(".", 1)[0])
            resolved = self.ref(name)
            return ",".join(resolved) if isinstance(resolved, list) else str(resolved)

        return re.sub(r"\$\{([^}]+)\}", value, text)

    def resolve(self, node: Any) -> Any:
        """``node`` with every intrinsic resolved (AWS::NoValue removes the key or list item)."""
        if isinstance(node, list):
            return [item for item in (self.resolve(i) for i in node) if item is not NO_VALUE]
        if not isinstance(node, Mapping):
            return node
        if len(node) == 1:
            ((key, arg),) = node.items()
            if key == "Ref":
                return self.ref(str(arg))
            if key == "Condition":
                return self.condition(str(arg))
            if str(key).startswith("Fn::"):
                return self._function(str(key), arg)
        resolved = {str(k): self.resolve(v) for k, v in node.items()}
        return {k: v for k, v in resolved.items() if v is not NO_VALUE}

    def _function(self, name: str, arg: Any) -> Any:
        if name == "Fn::If":
            condition, when_true, when_false = _args(name, arg, 3)
            return self.resolve(when_true if self.condition(str(condition)) else when_false)
        if name == "Fn::Sub":
            if isinstance(arg, list):
                text, variables = _args(name, arg, 2)
                return self._sub(str(text), self.resolve(variables))
            return self._sub(str(arg), {})
        if name == "Fn::GetAtt":
            target = arg if isinstance(arg, list) else str(arg).split(".", 1)
            return self.resource_arn(str(target[0]))
        if name == "Fn::Join":
            separator, items = _args(name, arg, 2)
            return str(separator).join(str(i) for i in _flat(self.resolve(items)))
        if name == "Fn::Split":
            separator, text = _args(name, arg, 2)
            return str(self.resolve(text)).split(str(separator))
        if name == "Fn::Select":
            index, items = _args(name, arg, 2)
            try:
                return _flat(self.resolve(items))[int(self.resolve(index))]
            except (TypeError, ValueError, IndexError):
                raise ConfigError(self.name, f"Fn::Select of {index!r} from {items!r} selects nothing") from None
        if name == "Fn::Equals":
            left, right = _args(name, arg, 2)
            return str(self.resolve(left)) == str(self.resolve(right))
        if name == "Fn::Not":
            (only,) = _args(name, arg, 1)
            return not self.resolve(only)
        if name == "Fn::And":
            return all(self.resolve(a) for a in _args(name, arg, None))
        if name == "Fn::Or":
            return any(self.resolve(a) for a in _args(name, arg, None))
        raise ConfigError(self.name, f"{name} is not resolved without AWS (only IAM policies' intrinsics are)")


def _args(name: str, arg: Any, count: int | None) -> list[Any]:
    if not isinstance(arg, list) or (count is not None and len(arg) != count):
        raise ConfigError("template", f"{name} takes a list of {count or 'some'} arguments, not {arg!r}")
    return arg


def _flat(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list) else [value]


def _check_parameter(template: str, key: str, spec: Mapping[str, Any], value: str) -> None:
    allowed = spec.get("AllowedValues")
    if allowed is not None and value not in {str(v) for v in allowed}:
        raise ConfigError("--parameter", f"{key}: {template} allows only {', '.join(str(v) for v in allowed)}")
    pattern = spec.get("AllowedPattern")
    kind = str(spec.get("Type", "String"))
    parts = value.split(",") if kind.startswith("CommaDelimited") else [value]
    if pattern is not None and not all(re.fullmatch(str(pattern), part) for part in parts):
        raise ConfigError("--parameter", f"{key}: the value does not match {template}'s AllowedPattern {pattern}")
    if kind == "Number":
        try:
            float(value)
        except ValueError:
            raise ConfigError("--parameter", f"{key}: {template} wants a number") from None


def parse_parameters(items: list[str]) -> dict[str, str]:
    """``KEY=VALUE`` items as a mapping. Raises ConfigError for an item without ``=`` or a key given twice."""
    parsed: dict[str, str] = {}
    for number, item in enumerate(items, start=1):
        key, sep, value = item.partition("=")
        if not sep or not key:  # the item is not echoed: it may be a mistyped secret (ExternalId...)
            raise ConfigError("--parameter", f"the {_ordinal(number)} --parameter is not KEY=VALUE")
        if key in parsed:
            raise ConfigError("--parameter", f"{key} is given twice")
        parsed[key] = value
    return parsed


def _ordinal(number: int) -> str:
    return f"{number}" + ("th" if 10 <= number % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(number % 10, "th"))


__all__ = ["HUB_ACCOUNT", "REGION", "TARGET_ACCOUNT", "Stack", "load_template", "parse_parameters"]
