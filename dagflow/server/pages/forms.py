"""The Run form of a deployment, generated from its flow's parameter schema (pydantic's JSON
schema), and what a submitted form means.

One `FormField` per parameter, in signature order. Its input follows the parameter's type: text
for strings and numbers (so whatever a user types reaches the server, which says what is wrong
with it), a choice for enums and booleans, a JSON text area for lists, objects and anything
else. A field left empty is not given: the deployment's default applies, else the flow's (both
shown as the placeholder). A submitted form becomes `NAME=VALUE` pairs, the very text `dagflow
deployments run --param` takes, so the server validates it with the CLI's code and errors read
the same. Field errors (`errors_by_field`) are shown beside their inputs; the rest above the form.
Nothing here renders HTML: templates escape every value.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

PREFIX = "param:"  # form field names: param:<parameter name>
MAX_FIELDS = 200


@dataclass(frozen=True, slots=True)
class FormField:
    name: str
    label: str
    kind: str  # text | number | choice | bool | json
    type_text: str  # the type as a user reads it: integer, list of string, ...
    required: bool
    placeholder: str
    value: str
    options: tuple[str, ...] = ()
    help: str = ""
    error: str = ""

    @property
    def input_name(self) -> str:
        return PREFIX + self.name

    @property
    def input_id(self) -> str:
        return "param-" + "".join(c if c.isalnum() or c in "-_" else "_" for c in self.name)


def _resolve(schema: Mapping[str, Any], node: Mapping[str, Any]) -> Mapping[str, Any]:
    ref = node.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/$defs/"):
        found = schema.get("$defs", {}).get(ref.rpartition("/")[2])
        if isinstance(found, Mapping):
            return found
    return node


def _shape(schema: Mapping[str, Any], node: Mapping[str, Any]) -> tuple[Mapping[str, Any], bool]:
    """The node without its `null` alternative, and whether null was allowed."""
    node = _resolve(schema, node)
    options = node.get("anyOf")
    if isinstance(options, list):
        rest = [_resolve(schema, o) for o in options if o.get("type") != "null"]
        nullable = len(rest) < len(options)
        if len(rest) == 1:
            return rest[0], nullable
        return {"anyOf": rest}, nullable
    return node, False


def _type_text(schema: Mapping[str, Any], node: Mapping[str, Any]) -> str:
    node, nullable = _shape(schema, node)
    kind = node.get("type")
    if "enum" in node:
        text = "one of " + ", ".join(str(v) for v in node["enum"])
    elif kind == "array":
        items = node.get("items")
        text = f"list of {_type_text(schema, items)}" if isinstance(items, Mapping) else "list"
    elif kind == "object":
        text = "object"
    elif isinstance(kind, str):
        text = {"integer": "integer", "number": "number", "boolean": "true/false"}.get(kind, kind)
        if node.get("format"):
            text += f" ({node['format']})"
    elif "anyOf" in node:
        text = " or ".join(_type_text(schema, o) for o in node["anyOf"])
    else:
        text = "any JSON value"
    return f"{text}, or null" if nullable else text


def _as_text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def fields_of(
    schema: Mapping[str, Any],
    defaults: Mapping[str, Any],
    values: Mapping[str, str] | None = None,
    errors: Mapping[str, str] | None = None,
) -> list[FormField]:
    """The form's fields: `defaults` are the deployment's parameters, `values` what the user
    typed (a form shown again with its errors)."""
    properties = schema.get("properties") or {}
    required = set(schema.get("required") or ())
    values = values or {}
    errors = errors or {}
    out = []
    for name, raw in list(properties.items())[:MAX_FIELDS]:
        if not isinstance(raw, Mapping):
            continue
        node, _ = _shape(schema, raw)
        kind = node.get("type")
        options: tuple[str, ...] = ()
        if "enum" in node:
            field_kind, options = "choice", tuple(_as_text(v) for v in node["enum"])
        elif kind == "boolean":
            field_kind, options = "bool", ("true", "false")
        elif kind in ("integer", "number"):
            field_kind = "number"
        elif kind == "string":
            field_kind = "text"
        else:
            field_kind = "json"
        if name in defaults:
            placeholder = f"deployment default: {_as_text(defaults[name])}"
        elif "default" in raw:
            placeholder = f"default: {_as_text(raw['default'])}"
        else:
            placeholder = "required" if name in required else ""
        out.append(
            FormField(
                name=name,
                label=name,
                kind=field_kind,
                type_text=_type_text(schema, raw),
                required=name in required and name not in defaults,
                placeholder=placeholder,
                value=values.get(name, ""),
                options=options,
                help=str(raw.get("description") or ""),
                error=errors.get(name, ""),
            )
        )
    return out


def submitted(form: Mapping[str, Sequence[str]]) -> dict[str, str]:
    """The parameters a submitted form gives (`param:NAME` fields), by name, as typed."""
    out: dict[str, str] = {}
    for key, given in form.items():
        if key.startswith(PREFIX) and given:
            out[key[len(PREFIX) :]] = given[-1]
    return out


def pairs_of(values: Mapping[str, str]) -> list[str]:
    """`NAME=VALUE` for every field that was filled in (an empty one is not given)."""
    return [f"{name}={text}" for name, text in values.items() if text.strip()]


def errors_by_field(
    errors: Sequence[Mapping[str, Any]], names: Sequence[str]
) -> tuple[dict[str, str], list[str]]:
    """Per-field messages (`loc` starts with a parameter's name), and the others."""
    by_field: dict[str, str] = {}
    other: list[str] = []
    known = set(names)
    for err in errors:
        loc = [str(p) for p in err.get("loc", ())]
        message = str(err.get("msg", "invalid"))
        if loc and loc[0] in known:
            where = ".".join(loc[1:])
            text = f"{where}: {message}" if where else message
            by_field[loc[0]] = f"{by_field[loc[0]]}; {text}" if loc[0] in by_field else text
        else:
            other.append(f"{'.'.join(loc)}: {message}" if loc else message)
    return by_field, other
