"""Declaring, reading and validating ROS parameters with clear error messages.

Every parameter is declared with a descriptor (description, read-only, allowed values) and
``dynamic_typing`` so that a YAML ``1`` for a float parameter is not a crash; the value is then
coerced to the expected kind here, and every problem of a node's configuration is reported at
once in one :class:`ParameterError`. Parameters of the ROS-free core (``PerceptionConfig`` and
``SafetyConfig`` sections) are declared from their dataclasses (:func:`dataclass_specs`), so the
node and the core never disagree about names or defaults.
"""
from __future__ import annotations

import dataclasses
import math
import typing
from dataclasses import dataclass
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

from rcl_interfaces.msg import ParameterDescriptor

# parameters every rclpy node may have without declaring them here
ROS_BUILTIN_PARAMETERS = ("use_sim_time", "start_type_description_service")
ROS_BUILTIN_PREFIXES = ("qos_overrides.",)

KINDS = ("bool", "int", "float", "str", "str_list", "float_list", "int_list")


class ParameterError(ValueError):
    """The node's parameters are invalid; the message lists every problem."""


@dataclass(frozen=True)
class ParamSpec:
    """One parameter: ``kind`` in :data:`KINDS`; ``optional`` allows an unset (None) value;
    ``choices`` restricts the value; ``check(value)`` returns an error text or None."""

    name: str
    default: Any
    kind: str
    description: str
    choices: Tuple[Any, ...] = ()
    check: Optional[Callable[[Any], Optional[str]]] = None
    optional: bool = False

    def descriptor(self) -> ParameterDescriptor:
        extra = f"one of {list(self.choices)}" if self.choices else ""
        return ParameterDescriptor(name=self.name, description=self.description,
                                   additional_constraints=extra, read_only=True,
                                   dynamic_typing=True)


# ------------------------------------------------------------------------------- checks
def positive(v) -> Optional[str]:
    return None if v > 0 else "must be > 0"


def non_negative(v) -> Optional[str]:
    return None if v >= 0 else "must be >= 0"


def at_least(n: float) -> Callable[[Any], Optional[str]]:
    return lambda v: None if v >= n else f"must be >= {n}"


def coerce(value: Any, kind: str) -> Any:
    """``value`` as ``kind``; raises ``TypeError`` with what was expected."""
    if kind == "bool":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        raise TypeError("expected true or false")
    if kind == "int":
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise TypeError("expected an integer")
    if kind == "float":
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if math.isnan(float(value)):
                raise TypeError("expected a number, got NaN")
            return float(value)
        raise TypeError("expected a number")
    if kind == "str":
        if isinstance(value, str):
            return value
        raise TypeError("expected a string")
    if kind.endswith("_list"):
        if isinstance(value, (bytes, bytearray)) and len(value) == 0:
            return []
        if not isinstance(value, (list, tuple)):
            raise TypeError(f"expected a list ({kind.replace('_list', '')} items)")
        item = kind[:-5]
        out = [coerce(v, item) for v in value]
        # [""] stands for an empty list in parameter files (rcl cannot type an empty YAML list)
        return [v for v in out if v != ""] if item == "str" else out
    raise ValueError(f"unknown parameter kind {kind}")  # pragma: no cover


def _spec_value(spec: ParamSpec, raw: Any) -> Any:
    if raw is None:
        if spec.optional or spec.default is None:
            return None
        raise TypeError("must be set")
    value = coerce(raw, spec.kind)
    if spec.choices and value not in spec.choices:
        raise TypeError(f"must be one of {list(spec.choices)}, got {value!r}")
    if spec.check is not None:
        problem = spec.check(value)
        if problem:
            raise TypeError(f"{problem}, got {value!r}")
    return value


def declare(node, specs: Sequence[ParamSpec]) -> Tuple[Dict[str, Any], List[str]]:
    """Declare ``specs`` on ``node``; returns (values by name, list of error texts)."""
    values: Dict[str, Any] = {}
    errors: List[str] = []
    for spec in specs:
        default = list(spec.default) if isinstance(spec.default, tuple) else spec.default
        try:
            param = node.declare_parameter(spec.name, default, spec.descriptor())
            values[spec.name] = _spec_value(spec, param.value)
        except TypeError as exc:
            errors.append(f"parameter '{spec.name}' {exc}")
        except Exception as exc:  # rclpy's own exceptions on malformed overrides
            errors.append(f"parameter '{spec.name}': {exc}")
    return values, errors


def parameter_overrides(node) -> Dict[str, Any]:
    """Parameter values given to ``node`` from the command line or parameter files."""
    overrides = getattr(node, "_parameter_overrides", {}) or {}
    return {name: p.value for name, p in overrides.items()}


def declare_checked(node, specs: Sequence[ParamSpec]) -> Tuple[Dict[str, Any], List[str]]:
    """:func:`declare`, plus an error for every override that names no declared parameter."""
    values, errors = declare(node, specs)
    return values, errors + unknown_errors(node, specs)


def unknown_errors(node, specs: Sequence[ParamSpec]) -> List[str]:
    """One error text (with a "did you mean") per override that names none of ``specs``."""
    known = [s.name for s in specs]
    return [f"unknown parameter '{n}'{suggest(n, known)}" for n in unknown_parameters(node, known)]


def unknown_parameters(node, known: Iterable[str]) -> List[str]:
    """Overrides that name no declared parameter (usually a typo)."""
    known = set(known) | set(ROS_BUILTIN_PARAMETERS)
    return sorted(n for n in parameter_overrides(node)
                  if n not in known and not n.startswith(ROS_BUILTIN_PREFIXES))


def suggest(name: str, known: Iterable[str]) -> str:
    import difflib
    close = difflib.get_close_matches(name, list(known), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def resolve_topic(namespace: str, topic: str) -> str:
    """``topic`` under ``namespace`` unless it is absolute (starts with '/' or '~')."""
    if topic.startswith(("/", "~")) or not namespace:
        return topic
    return namespace.rstrip("/") + "/" + topic


# ---------------------------------------------------------------- dataclass-backed sections
def _kind_of(hint: Any, default: Any) -> Optional[Tuple[str, bool]]:
    """(kind, optional) of a dataclass field, or None when ROS parameters cannot hold it."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    optional = False
    if origin is typing.Union and type(None) in args:
        rest = [a for a in args if a is not type(None)]
        if len(rest) != 1:
            return None
        hint, optional = rest[0], True
        origin, args = typing.get_origin(hint), typing.get_args(hint)
    simple = {bool: "bool", int: "int", float: "float", str: "str"}
    if hint in simple:
        return simple[hint], optional
    if origin in (tuple, list, typing.Sequence) and args:
        item = args[0]
        if item in (str, float, int) and (origin is not tuple or len(args) == 1
                                          or args[-1] is Ellipsis):
            return simple[item] + "_list", optional
    return None


def dataclass_specs(cls, prefix: str, exclude: Iterable[str] = (),
                    descriptions: Optional[Mapping[str, str]] = None) -> List[ParamSpec]:
    """One :class:`ParamSpec` per ROS-expressible field of dataclass ``cls`` (defaults from
    the dataclass), named ``prefix + field``; fields ROS cannot hold (dicts, nested types) and
    ``exclude`` are skipped."""
    hints = typing.get_type_hints(cls)
    specs = []
    for f in dataclasses.fields(cls):
        if f.name in exclude or f.name.startswith("_"):
            continue
        if f.default is not dataclasses.MISSING:
            default = f.default
        elif f.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
            default = f.default_factory()  # type: ignore[misc]
        else:
            continue
        kk = _kind_of(hints.get(f.name), default)
        if kk is None or isinstance(default, dict):
            continue
        kind, optional = kk
        if isinstance(default, float) and math.isinf(default):
            optional = True
        desc = (descriptions or {}).get(f.name) or \
            f"{cls.__name__}.{f.name} (see the core module's documentation)"
        specs.append(ParamSpec(prefix + f.name, default, kind, desc, optional=optional))
    return specs


def nest(values: Mapping[str, Any], prefix: str) -> Dict[str, Any]:
    """``{'perception.keypoints.max_persons': 3}`` with prefix 'perception.' ->
    ``{'keypoints': {'max_persons': 3}}``."""
    out: Dict[str, Any] = {}
    for name, value in values.items():
        if not name.startswith(prefix):
            continue
        parts = name[len(prefix):].split(".")
        d = out
        for p in parts[:-1]:
            d = d.setdefault(p, {})
        d[parts[-1]] = value
    return out


def changed_from_defaults(values: Mapping[str, Any], specs: Sequence[ParamSpec]
                          ) -> Dict[str, Any]:
    """The values that differ from their spec's default (lists compared as lists)."""
    out = {}
    for s in specs:
        v = values.get(s.name)
        d = list(s.default) if isinstance(s.default, tuple) else s.default
        if v is None and d is None:
            continue
        if v != d:
            out[s.name] = v
    return out
