"""Parameter templates: a deployment's parameters filled from the event that starts a run.

`parameters={"path": "{{ event.path }}", "note": "from {{ event.source }}"}`. Templates are
Jinja2 expressions run in its sandbox (no attribute of Python internals, no calls into user
objects, never `eval`) with `StrictUndefined`: a field the event does not have is an error, one
line naming the parameter and the field, never an empty string passed on silently.

A value that is exactly one `{{ ... }}` keeps the expression's type (`{{ event.size }}` is an
int, `{{ event.paths }}` a list); text around an expression makes it text. Templates are
parsed when the deployment is defined (a syntax error is a definition error) and rendered when
an event fires. Strings, and strings inside lists and mappings, are templated; nothing else.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from dagflow.errors import DeploymentError

_WHOLE = re.compile(r"^\s*\{\{(.*)\}\}\s*$", re.DOTALL)


class TemplateError(DeploymentError):
    """A template does not parse, or names a field the event does not have."""


@lru_cache(maxsize=1)
def _env() -> Any:
    from jinja2 import StrictUndefined
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    return ImmutableSandboxedEnvironment(undefined=StrictUndefined, autoescape=False)


def is_template(value: Any) -> bool:
    """Does `value` (or a string inside it) hold a `{{ ... }}` or `{% ... %}` template?"""
    if isinstance(value, str):
        return "{{" in value or "{%" in value
    if isinstance(value, Mapping):
        return any(is_template(v) for v in value.values())
    if isinstance(value, list | tuple):
        return any(is_template(v) for v in value)
    return False


def templated(parameters: Mapping[str, Any]) -> list[str]:
    """The names of the parameters that hold templates."""
    return [key for key, value in parameters.items() if is_template(value)]


def check(parameters: Mapping[str, Any]) -> None:
    """Parse every template; `TemplateError` naming the parameter if one does not parse."""
    from jinja2 import TemplateSyntaxError

    for key, value in parameters.items():
        for text in _strings(value):
            try:
                _compile(text)
            except TemplateSyntaxError as exc:
                raise TemplateError(f"parameters.{key}: template {text!r}: {exc.message}") from None


def render(parameters: Mapping[str, Any], context: Mapping[str, Any]) -> dict[str, Any]:
    """`parameters` with their templates filled from `context` (`event`, `events`)."""
    return {key: _render(key, value, context) for key, value in parameters.items()}


def _render(key: str, value: Any, context: Mapping[str, Any]) -> Any:
    if isinstance(value, str):
        if "{{" not in value and "{%" not in value:
            return value
        return _one(key, value, context)
    if isinstance(value, Mapping):
        return {k: _render(key, v, context) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_render(key, v, context) for v in value]
    return value


def _one(key: str, text: str, context: Mapping[str, Any]) -> Any:
    from jinja2 import TemplateError as JinjaError
    from jinja2 import Undefined, UndefinedError

    try:
        compiled = _compile(text)
        if isinstance(compiled, tuple):  # one whole expression: its value, with its type
            value = compiled[1](**context)
            if isinstance(value, Undefined):
                str(value)  # StrictUndefined raises, naming what is missing
            return value
        return compiled.render(**context)
    except UndefinedError as exc:
        fields = ", ".join(sorted(str(k) for k in (context.get("event") or {})))
        raise TemplateError(
            f"parameters.{key}: template {text!r}: {exc.message} (the event has: {fields})"
        ) from None
    except (JinjaError, TypeError, ValueError, AttributeError) as exc:
        raise TemplateError(f"parameters.{key}: template {text!r}: {exc}") from None


@lru_cache(maxsize=1024)
def _compile(text: str) -> Any:
    whole = _WHOLE.match(text)
    if whole and "}}" not in whole.group(1) and "{{" not in whole.group(1):
        return ("expression", _env().compile_expression(whole.group(1), undefined_to_none=False))
    return _env().from_string(text)


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value] if is_template(value) else []
    if isinstance(value, Mapping):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list | tuple):
        return [s for v in value for s in _strings(v)]
    return []
