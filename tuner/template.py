"""Render a program template (Jinja2) for one configuration.

A study's ``[program] template = "dir/file.c.j2"`` is rendered with every knob value of the
configuration as a variable (a permutation knob arrives as a list of item names, e.g.
``["co", "h", "w", "ci"]``) plus the study's ``[program] params`` constants. The engine writes
the result as a generated ``.c`` file and compiles it with the program's other sources.

This module is pure: it reads the template (and the files it ``include``s, looked up in the
template's directory) and returns text. ``StrictUndefined`` turns a variable the template
uses but the configuration does not provide into an error instead of an empty string.

Errors are Jinja2's own exception types (all subclasses of ``jinja2.TemplateError``, module
``jinja2.*``) with messages that name the template and, for a missing variable, the variable
and the variables that were given.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping


def render_template(path: Path, variables: Mapping[str, Any]) -> str:
    """Render the Jinja2 template at ``path`` with ``variables``; return the text.

    Raises ``jinja2.UndefinedError`` ("template X: 'tile_ci' is undefined (variables given:
    ...)") when the template uses a variable that is not given, ``jinja2.TemplateSyntaxError``
    for a malformed template and ``jinja2.TemplateNotFound`` for a missing file.
    """
    import jinja2

    path = Path(path)
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(path.parent)),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,
    )
    template = env.get_template(path.name)
    try:
        return template.render(**dict(variables))
    except jinja2.UndefinedError as exc:
        given = ", ".join(sorted(variables)) or "none"
        raise jinja2.UndefinedError(f"template {path}: {exc.message} (variables given: {given})") from exc
