"""How a setting is declared: a dataclass field carrying its documentation and allowed range.

Sections of the configuration (and the models' own settings dataclasses, which *are*
sections) declare every field with :func:`param`: default, one-line doc, bounds or
choices. :func:`option` marks a field that is not a setting of the job (the train stage
fills it from shared settings, such as a model's ``seed`` from ``train.seed``, or it is
a library knob the pipeline does not expose); it is neither loaded nor documented.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import field
from typing import Any


class ConfigError(ValueError):
    """A configuration key is unknown, has the wrong type or is out of range."""


def param(default: Any, doc: str, *, gt: float | None = None, ge: float | None = None,
          le: float | None = None, lt: float | None = None, choices: tuple[Any, ...] | None = None,
          nonempty: bool = False, check: Callable[[Any], Any] | None = None) -> Any:
    """A dataclass field carrying its documentation and allowed range.

    For list fields ``gt``/``ge``/``le``/``lt``/``choices``/``check`` apply to every element and
    ``nonempty`` asks for at least one. ``check`` converts one value (or element) and
    raises ValueError with the reason when it is not allowed.
    """
    meta = {"doc": doc, "gt": gt, "ge": ge, "le": le, "lt": lt, "choices": choices,
            "nonempty": nonempty, "check": check, "setting": True}
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda: type(default)(default), metadata=meta)
    return field(default=default, metadata=meta)


def option(default: Any, doc: str) -> Any:
    """A field that is not a job setting: filled by the caller (e.g. from ``train.seed``)."""
    return field(default=default, metadata={"doc": doc, "setting": False})


def is_setting(f: Any) -> bool:
    """True for fields declared with :func:`param` (loaded, validated, documented)."""
    return bool(f.metadata.get("setting"))
