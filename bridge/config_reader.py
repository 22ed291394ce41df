"""Reading one YAML mapping with typed getters that collect every problem, one per line.

``${VAR}`` and ``${VAR:-default}`` are expanded in every string first. Problems are phrased
``dotted.path: what is wrong, got <value>``; secrets are never shown, even in a problem.
"""

from __future__ import annotations

import contextlib
import os
import re
from typing import Any, TypeVar

SECRET_KEYS = frozenset({"password", "client_secret"})
MASK = "***"
_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
T = TypeVar("T")
_BAD = object()  # a value whose ${VAR} could not be expanded: already reported


class Section:
    """Reads one mapping of the YAML tree, recording problems under its dotted path."""

    def __init__(self, data: Any, path: str, problems: list[str]) -> None:
        self.path = path
        self.problems = problems
        if data is None:
            data = {}
        if not isinstance(data, dict):
            self.fail("", f"expected a mapping, got {shown(path, data)}")
            data = {}
        self.data: dict[str, Any] = data
        self.read: set[str] = set()

    def key_path(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path and key else (self.path or key or "config")

    def fail(self, key: str, message: str) -> None:
        self.problems.append(f"{self.key_path(key)}: {message}")

    def raw(self, key: str, default: Any) -> Any:
        self.read.add(key)
        before = len(self.problems)
        value = _expand(self.data.get(key, default), self.key_path(key), self.problems)
        return _BAD if len(self.problems) > before else value

    def section(self, key: str) -> Section:
        return Section(self.raw(key, None), self.key_path(key), self.problems)

    def integer(self, key: str, default: int, low: int, high: int) -> int:
        value = self.raw(key, default)
        if value is _BAD:
            return default
        if isinstance(value, str) and value.strip().isdigit():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            self.fail(key, f"expected an integer {low}-{high}, got {shown(key, value)}")
            return default
        return value

    def number(self, key: str, default: float, low: float, high: float) -> float:
        value = self.raw(key, default)
        if value is _BAD:
            return default
        if isinstance(value, str):
            with contextlib.suppress(ValueError):
                value = float(value)
        if isinstance(value, bool) or not isinstance(value, int | float) or not (
            low <= value <= high
        ):
            self.fail(key, f"expected a number {low:g}-{high:g}, got {shown(key, value)}")
            return default
        return float(value)

    def boolean(self, key: str, default: bool) -> bool:
        value = self.raw(key, default)
        if value is _BAD:
            return default
        if isinstance(value, str) and value.lower() in ("true", "false"):
            value = value.lower() == "true"
        if not isinstance(value, bool):
            self.fail(key, f"expected true or false, got {shown(key, value)}")
            return default
        return value

    def text(self, key: str, default: str | None, *, required: bool = False) -> str:
        value = self.raw(key, default)
        if value is _BAD:
            return ""
        if value is None and required:
            self.fail(key, "is required")
            return ""
        if not isinstance(value, str) or not value.strip():
            self.fail(key, f"expected a non-empty string, got {shown(key, value)}")
            return default or ""
        return value

    def optional_text(self, key: str) -> str | None:
        value = self.raw(key, None)
        if value is None or value is _BAD:
            return None
        if isinstance(value, int | float) and not isinstance(value, bool):
            return str(value)
        if not isinstance(value, str):
            self.fail(key, f"expected a string, got {shown(key, value)}")
            return None
        return value

    def choice(self, key: str, default: T, choices: tuple[T, ...]) -> T:
        value = self.raw(key, default)
        if value is _BAD:
            return default
        if isinstance(value, str):
            value = value.lower()
        if value not in choices:
            allowed = ", ".join(str(c) for c in choices)
            self.fail(key, f"expected one of {allowed}, got {shown(key, value)}")
            return default
        result: T = value
        return result

    def url(self, key: str, default: str | None) -> str:
        value = self.text(key, default, required=default is None)
        if value and not re.match(r"^https?://[^/\s]+", value):
            self.fail(key, f"expected an http:// or https:// URL, got {shown(key, value)}")
        return value.rstrip("/")

    def mapping(self, key: str) -> dict[str, Any]:
        value = self.raw(key, None)
        if value is None:
            return {}
        if not isinstance(value, dict):
            self.fail(key, f"expected a mapping, got {shown(key, value)}")
            return {}
        return value

    def done(self) -> None:
        for key in sorted(set(self.data) - self.read, key=str):
            self.fail(str(key), "unknown key (check the spelling)")


def shown(key: str, value: Any) -> str:
    if key.rsplit(".", 1)[-1] in SECRET_KEYS:
        return repr(MASK)
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _expand(value: Any, path: str, problems: list[str]) -> Any:
    if not isinstance(value, str) or "${" not in value:
        return value

    def substitute(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        found = os.environ.get(name)
        if found is not None and (found or default is None):
            return found
        if default is not None:
            return default
        problems.append(f"{path}: environment variable {name} is not set")
        return ""

    return _ENV.sub(substitute, value)
