"""``invoke bench --var NAME=VALUE``: Terraform variables of the bench's own stack.

Each ``NAME`` must be a variable declared in ``terraform/variables.tf``; its ``VALUE`` is
read by the variable's declared type (a number, ``true``/``false``, a string as written, or
JSON for lists, maps and objects), so a typo fails here in one line instead of after the
backend has started. The values are applied on top of ``environments/local.tfvars`` (the
runner's ``runner.tfvars.json`` comes after the env's file, so it wins).
"""

from __future__ import annotations

import difflib
import json
import math
import re
import shlex
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from tooling.errors import OperatorError
from tooling.terraform import TERRAFORM_DIR

VARIABLES_TF = TERRAFORM_DIR / "variables.tf"
# Set by the tooling itself on every deploy: the built zips and the embedded backend's endpoint.
RESERVED = {"api_zip_path", "worker_zip_path", "publisher_zip_path", "notifier_zip_path", "aws_endpoint_url"}
_DECLARATION = re.compile(r'^variable\s+"([A-Za-z_][A-Za-z0-9_-]*)"\s*\{(.*?)^\}', re.M | re.S)
_TYPE = re.compile(r"^\s*type\s*=\s*(.+?)\s*$", re.M)
_TODO = "use --var NAME=VALUE with a variable of terraform/variables.tf, e.g. --var worker_batch_size=1"


def declared(path: Path = VARIABLES_TF) -> dict[str, str]:
    """Variable name -> its declared type (``any`` when it declares none), in file order."""
    found: dict[str, str] = {}
    for name, body in _DECLARATION.findall(path.read_text()):
        type_match = _TYPE.search(body)
        found[name] = type_match.group(1) if type_match else "any"
    return found


def _value(spec: str, name: str, raw: str, kind: str) -> Any:
    def wrong(expected: str) -> OperatorError:
        return OperatorError(f"--var {spec}: {name} is a {kind}, and {raw!r} is not {expected}", _TODO)

    if kind == "number":
        try:
            number = json.loads(raw)
        except ValueError:
            raise wrong("a number") from None
        if isinstance(number, bool) or not isinstance(number, int | float) or not math.isfinite(number):
            raise wrong("a number")
        return number
    if kind == "bool":
        if raw not in ("true", "false"):
            raise wrong("true or false")
        return raw == "true"
    if kind == "string":
        return raw
    try:  # list(...), map(...), object(...), any: JSON, as in a .tfvars.json file
        return json.loads(raw)
    except ValueError:
        if kind == "any":
            return raw
        raise wrong('JSON (e.g. ["a", "b"] or {"k": "v"})') from None


def parse(specs: Iterable[str], path: Path = VARIABLES_TF) -> dict[str, Any]:
    """``["NAME=VALUE", ...]`` -> ``{NAME: typed value}``; a later NAME wins, as with terraform -var.

    Raises ``OperatorError`` (one ``error:`` line) for a spec without ``=``, an unknown or
    reserved NAME, or a VALUE that is not of the variable's type.
    """
    types = declared(path) if specs else {}
    values: dict[str, Any] = {}
    for spec in specs:
        name, sep, raw = spec.partition("=")
        name = name.strip()
        if not sep or not name:
            raise OperatorError(f"--var {spec!r} is not NAME=VALUE", _TODO)
        if name in RESERVED:
            raise OperatorError(f"--var {spec}: {name} is set by the bench itself", "leave it out")
        if name not in types:
            close = difflib.get_close_matches(name, list(types), n=1)
            todo = f"did you mean --var {close[0]}={raw}?" if close else _TODO
            raise OperatorError(f"--var {spec}: {name} is not a variable of terraform/variables.tf", todo)
        values[name] = _value(spec, name, raw, types[name])
    return values


def flag(name: str, value: Any) -> str:
    """The ``--var`` flag that gives ``name`` this ``value`` again (for the printed command)."""
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, str):
        text = value
    else:
        text = json.dumps(value, separators=(",", ":"))
    return "--var=" + shlex.quote(f"{name}={text}")
