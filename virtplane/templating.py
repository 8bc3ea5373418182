"""Render a VM's cloud-init templates with Jinja2: a sandboxed environment (templates cannot reach Python
objects' internals or change them) with StrictUndefined (a variable the stack does not give is an error naming
the template file, its line and the variable, never an empty string in a guest's configuration).

Templates are files; a relative path is taken from the stack's directory (the Pulumi project directory: where
``virtplane plan`` reads ``Pulumi.yaml``, and the working directory ``pulumi up`` runs the program in). A template
may include or extend others next to it. The variables are the stack's ``vars`` plus ``vm_name`` (the VM's
resource name). Rendered documents are checked here (virtplane/cloudinit.py) so a mistake names the template.
"""

from __future__ import annotations

import os
import re
import traceback
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2
from jinja2.sandbox import ImmutableSandboxedEnvironment, SecurityError

from virtplane import cloudinit

_UNDEFINED = re.compile(r"^'([^']+)' is undefined$")
_NO_ATTRIBUTE = re.compile(r"^'[^']+' (?:object )?has no attribute '([^']+)'$")
FIELDS = ("user_data", "meta_data", "network_config")


class TemplateProblem(Exception):
    """A template that cannot become a cloud-init document: ``field`` (``cloud_init.user_data``) and one sentence
    naming the template file and where in it."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


@dataclass(frozen=True)
class Templates:
    """The template files of one VM's cloud-init (as the stack gives them) and the directory they are taken from."""

    user_data: str
    meta_data: str | None
    network_config: str | None
    root: Path

    def path(self, given: str) -> Path:
        path = Path(os.path.expanduser(given))
        return path if path.is_absolute() else self.root / path


def render(templates: Templates, values: Mapping[str, Any], vm_name: str) -> dict[str, str | None]:
    """The rendered documents (``user_data``, ``meta_data`` — with the VM's instance-id and hostname —,
    ``network_config``) as CloudInitSpec takes them; TemplateProblem for the first one that is wrong."""
    context = {**dict(values), "vm_name": vm_name}
    rendered: dict[str, str | None] = {}
    for field in FIELDS:
        given = getattr(templates, field)
        rendered[field] = None if given is None else _render_one(templates, field, given, context)
    user_data = str(rendered["user_data"])
    _check(templates.user_data, "user_data", lambda: cloudinit.user_data_format(user_data))
    network = rendered["network_config"]
    network_mapping = None
    if network is not None:
        network_mapping = _check(str(templates.network_config), "network_config",
                                 lambda: cloudinit.network_mapping(network))
    given_meta: dict[str, Any] = {}
    if rendered["meta_data"] is not None:
        meta_text = rendered["meta_data"]
        given_meta = _check(str(templates.meta_data), "meta_data",
                            lambda: cloudinit.mapping(meta_text, "meta-data YAML"))
    meta = cloudinit.default_meta_data(vm_name, user_data, network_mapping, given_meta)
    return {"user_data": user_data, "meta_data": cloudinit.dump(meta), "network_config": network}


def _check(template: str, field: str, check: Any) -> Any:
    try:
        return check()
    except cloudinit.DocumentError as exc:
        text = str(exc).replace(" (line ", " (rendered line ")
        raise TemplateProblem(f"cloud_init.{field}", f"template {template} renders {field.replace('_', '-')} that "
                              f"{text}") from None


def _render_one(templates: Templates, field: str, given: str, context: dict[str, Any]) -> str:
    path = templates.path(given)
    where = f"cloud_init.{field}"
    if not path.is_file():
        raise TemplateProblem(where, f"template {given} does not exist (looked for {path})")
    environment = ImmutableSandboxedEnvironment(
        loader=jinja2.FileSystemLoader(str(path.parent)), undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True, autoescape=False)
    try:
        return environment.get_template(path.name).render(context)
    except jinja2.TemplateSyntaxError as exc:
        raise TemplateProblem(where, f"template {_shown(exc.filename, given, path)} line {exc.lineno}: "
                              f"{exc.message}") from None
    except jinja2.UndefinedError as exc:
        raise TemplateProblem(where, _undefined(exc, given, path, context)) from None
    except SecurityError as exc:
        raise TemplateProblem(where, f"template {given}{_line(exc, path)}: the sandbox refused it: {exc}") from None
    except jinja2.TemplateError as exc:
        raise TemplateProblem(where, f"template {given}{_line(exc, path)}: {exc}") from None


def _undefined(exc: jinja2.UndefinedError, given: str, path: Path, context: Mapping[str, Any]) -> str:
    text = str(exc)
    missing = _UNDEFINED.match(text)
    known = ", ".join(sorted(context)) or "none"
    if missing:
        what = f"variable '{missing.group(1)}' is not defined (variables given: {known})"
    elif attribute := _NO_ATTRIBUTE.match(text):
        what = f"'{attribute.group(1)}' is not defined in the value it is read from"
    else:
        what = text
    return f"template {given}{_line(exc, path)}: {what}"


def _line(exc: BaseException, path: Path) -> str:
    """`` line N`` of the innermost frame of the failing template (or of a template it includes)."""
    frames = [frame for frame in traceback.extract_tb(exc.__traceback__)  # Jinja2 rewrites them to the templates
              if frame.filename and Path(frame.filename).parent == path.parent and not frame.filename.endswith(".py")]
    if not frames:
        return ""
    frame = frames[-1]
    name = Path(frame.filename).name
    return f" line {frame.lineno}" if name == path.name else f" (in {name}) line {frame.lineno}"


def _shown(filename: str | None, given: str, path: Path) -> str:
    if filename is None or Path(filename) == path:
        return given
    return f"{given} (in {Path(filename).name})"
