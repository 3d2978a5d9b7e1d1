"""Labels (``//pkg:name``) and target patterns (``//pkg:*``, ``//pkg/...``, ``//...``).

A label names one target; a pattern names a set. Both are parsed into frozen values and
formatted back to the same canonical text (``format(parse(x)) == x`` for canonical input).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from btbuild.errors import LabelError

# the one spelling of the names BUILD.toml and plugins declare
NAME_RE = re.compile(r"[a-z][a-z0-9_]*\Z")  # targets, root sources, user segments, predicates
SEGMENT_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_\-]*\Z")  # a package path segment
DOTTED_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*\Z")  # module, field


@dataclass(frozen=True, order=True)
class Label:
    package: str  # "" for the workspace root package, else "risk" or "risk/credit"
    name: str

    def __str__(self) -> str:
        return f"//{self.package}:{self.name}"


@dataclass(frozen=True)
class Pattern:
    """``kind`` is "target" (one label), "package" (``//pkg:*`` / ``//pkg:all``) or
    "recursive" (``//pkg/...``; ``//...`` is the recursive pattern of the root package)."""

    kind: str
    package: str
    name: str | None = None

    def __str__(self) -> str:
        if self.kind == "target":
            return f"//{self.package}:{self.name}"
        if self.kind == "package":
            return f"//{self.package}:*"
        return f"//{self.package}/..." if self.package else "//..."

    def matches(self, label: Label) -> bool:
        if self.kind == "target":
            return label.package == self.package and label.name == self.name
        if self.kind == "package":
            return label.package == self.package
        return (
            not self.package
            or label.package == self.package
            or label.package.startswith(self.package + "/")
        )


def check_package_path(package: str, text: str) -> None:
    """Reject empty, ``.``/``..`` and otherwise odd path segments (no path tricks)."""
    if package == "":
        return
    for segment in package.split("/"):
        if segment in ("", ".", ".."):
            raise LabelError(
                f"invalid label {text!r}: package path {package!r} has an empty, '.' or '..' segment"
            )
        if not SEGMENT_RE.match(segment):
            raise LabelError(
                f"invalid label {text!r}: package segment {segment!r} may only use letters, digits, '_' and '-'"
            )


def check_name(name: str, text: str) -> None:
    if not NAME_RE.match(name):
        raise LabelError(f"invalid label {text!r}: target name {name!r} must match [a-z][a-z0-9_]*")


def parse_label(text: str, current_package: str | None = None) -> Label:
    """Parse ``//pkg:name`` or (with ``current_package``) ``:name``."""
    if not isinstance(text, str):
        raise LabelError(f"a label must be a string, got {text!r}")
    if text.startswith(":"):
        if current_package is None:
            raise LabelError(f"relative label {text!r} needs a package: write //package{text}")
        check_name(text[1:], text)
        return Label(current_package, text[1:])
    if not text.startswith("//"):
        hint = ""
        if text.startswith("/"):
            hint = " (absolute paths are not labels)"
        elif NAME_RE.match(text):
            hint = f" (did you mean ':{text}'?)"
        raise LabelError(f"invalid label {text!r}: expected //package:name or :name{hint}")
    body = text[2:]
    if ":" not in body:
        raise LabelError(
            f"invalid label {text!r}: missing ':name' (write //{body}:{body.rsplit('/', 1)[-1] or 'name'})"
        )
    package, _, name = body.partition(":")
    check_package_path(package, text)
    check_name(name, text)
    return Label(package, name)


def parse_pattern(text: str, current_package: str | None = None) -> Pattern:
    """Parse a target pattern; plain labels are patterns of one target.

    Relative patterns (``:name``, ``:all``, ``:*``, ``...``, ``sub:name``, ``sub/...``) are
    read from inside a package folder, as in Bazel: ``current_package`` is the package of
    the current folder ("" for the packages folder itself), None outside any package."""
    if not isinstance(text, str) or not text:
        raise LabelError(
            f"invalid pattern {text!r}: expected //package:name, //package:*, //package/... or //..."
        )
    relative = ":" in text or text == "..." or text.endswith("/...")
    if not text.startswith("/") and relative and (current_package is not None or text[0] == ":"):
        return _relative_pattern(text, current_package)
    if text == "//...":
        return Pattern("recursive", "")
    if text.startswith("//") and text.endswith("/..."):
        package = text[2:-4]
        check_package_path(package, text)
        if package == "":
            raise LabelError(f"invalid pattern {text!r}: write //...")
        return Pattern("recursive", package)
    if text.startswith("//") and (text.endswith(":*") or text.endswith(":all")):
        package = text[2:].rpartition(":")[0]
        check_package_path(package, text)
        return Pattern("package", package)
    label = parse_label(text)
    return Pattern("target", label.package, label.name)


def _relative_pattern(text: str, current_package: str | None) -> Pattern:
    """``:name`` / ``:all`` / ``...`` / ``sub:name`` / ``sub/...`` below ``current_package``."""
    if current_package is None:
        full = f"//package{text}" if text.startswith(":") else f"//package/{text}"
        raise LabelError(
            f"relative pattern {text!r} needs a package: run btbuild inside a package folder "
            f"or write it in full ({full})"
        )
    if text == "..." or text.endswith("/..."):
        package = "/".join(part for part in (current_package, text[:-4]) if part)
        return parse_pattern(f"//{package}/..." if package else "//...")
    sub, _, rest = text.partition(":")
    package = "/".join(part for part in (current_package, sub) if part)
    return parse_pattern(f"//{package}:{rest}")
