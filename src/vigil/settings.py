"""Model settings from the command line: ``--set KEY=VALUE`` (and ``--epochs``, ``--seed``) parsed
against the type each setting of a model's ``Config`` declares, so a wrong value ends in one line
naming the setting before any data is read.

Types come from each setting's default: ``bool`` takes true/false/yes/no/1/0 (any case) and nothing
else; ``int`` a whole number; ``float`` a finite number; ``str`` the text as given; ``tuple`` a JSON
list (``[64,80,96]``), comma-separated items (``64,80,96``, ``motion,dynamics``) or a single value.
"""

from __future__ import annotations

import dataclasses
import json
import math
from typing import Any

from vigil.errors import VigilError

_TRUE, _FALSE = {"true", "yes", "1"}, {"false", "no", "0"}


def parse_set(items: list[str] | None) -> dict[str, str]:
    """``["k=v", ...]`` -> ``{"k": "v"}`` (values still text); one clear error for an item without ``=``."""
    out = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise VigilError(f"--set {item!r}: expected KEY=VALUE")
        out[key.strip()] = value
    return out


def _value(key: str, text: Any, default: Any) -> Any:
    where = f"--set {key}={text}"
    if not isinstance(text, str):                      # given as a Python value already (--epochs, --seed)
        text = json.dumps(text)
    if isinstance(default, bool):
        t = text.strip().lower()
        if t in _TRUE | _FALSE:
            return t in _TRUE
        raise VigilError(f"{where}: expected true or false (also yes/no, 1/0)")
    if isinstance(default, int):
        try:
            return int(text.strip())
        except ValueError:
            raise VigilError(f"{where}: expected a whole number") from None
    if isinstance(default, float):
        try:
            v = float(text.strip())
        except ValueError:
            raise VigilError(f"{where}: expected a number") from None
        if not math.isfinite(v):
            raise VigilError(f"{where}: expected a finite number")
        return v
    if isinstance(default, tuple):
        try:
            v = json.loads(text)
        except json.JSONDecodeError:                   # plain text: comma-separated items
            v = [x.strip() for x in text.split(",")]
        v = v if isinstance(v, list) else [v]
        kind = type(default[0]) if default else None
        try:
            return tuple(_value(f"{key}[{i}]", x if isinstance(x, str) else json.dumps(x), default[0])
                         for i, x in enumerate(v)) if kind in (int, float, bool) else tuple(v)
        except VigilError as e:
            raise VigilError(f"{where}: {str(e).split(': ', 1)[-1]}") from None
    return text


def model_settings(klass, items: list[str] | None = None, **named: Any) -> dict[str, Any]:
    """The settings of model class ``klass`` given as ``--set`` items and named options (``epochs``,
    ``seed``; ``None`` = not given), parsed by each setting's declared type."""
    fields = {f.name: f for f in dataclasses.fields(klass.Config)}
    given = dict(parse_set(items))
    for name, value in named.items():
        if value is None:
            continue
        if name not in fields:
            raise VigilError(f"--{name}: model '{klass.name}' has no such setting "
                             f"(its settings: {', '.join(sorted(fields))})")
        given[name] = value
    unknown = set(given) - set(fields)
    if unknown:
        raise VigilError(f"--set: model '{klass.name}' has no setting {', '.join(sorted(unknown))} "
                         f"(its settings: {', '.join(sorted(fields))})")
    out = {k: _value(k, v, fields[k].default) for k, v in given.items()}
    if "epochs" in out and out["epochs"] < 1:
        raise VigilError(f"--epochs {out['epochs']}: must be a whole number, at least 1")
    if "seed" in out and out["seed"] < 0:
        raise VigilError(f"--seed {out['seed']}: must be a whole number, at least 0")
    return out
