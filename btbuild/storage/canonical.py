"""Canonical JSON: the exact bytes every backend stores for a value (see codec.py).

Sorted keys, compact separators, UTF-8 (``ensure_ascii=False``), floats as ``repr`` (the
shortest text that round-trips), ``-0.0`` written as ``0.0``, NaN and Infinity refused, and
anything that is not ``dict`` (str keys), ``list``, ``str``, ``int``, ``float``, ``bool`` or
``None`` refused with the path inside the value (tuples too: they would read back as lists).
Subclasses of the JSON types (``numpy.float64``) are written as their base type.

Values are encoded by msgspec when its bytes are provably the standard encoder's (exact JSON
types only, no ``null`` that could be a NaN, no negative zero, no float with an exponent or
under 1e-4 in magnitude); anything else goes through the standard library's encoder, so the
bytes are the same whichever path wrote them. Reading parses many lines with one
``msgspec.json.decode`` call, falling back to ``json.loads`` line by line for what only it
reads (lone surrogate escapes) or rejects.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable
from typing import Any

import msgspec
import xxhash

from btbuild.errors import CalculationError

# --------------------------------------------------------------------------- canonical JSON


class _Invalid(Exception):
    """Internal: a value is not JSON; ``keys`` collects the path while unwinding."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
        self.keys: list[str | int] = []


def format_path(keys: Iterable[str | int], root: str = "$") -> str:
    """``$.u001.risk[3]``; keys that are not identifiers are quoted: ``$["a b"]``."""
    parts = [root]
    for key in keys:
        if isinstance(key, int):
            parts.append(f"[{key}]")
        elif key.isidentifier():
            parts.append(f".{key}")
        else:
            parts.append(f"[{json.dumps(key, ensure_ascii=False)}]")
    return "".join(parts)


def _scan(value: Any) -> bool:
    """Check that ``value`` is a JSON value; return True if it holds a negative zero."""
    kind = type(value)
    if kind is str or kind is bool or kind is int or value is None:
        return False
    if kind is float or (isinstance(value, float)):
        if math.isnan(value) or math.isinf(value):
            raise _Invalid(f"{value!r} is not allowed (NaN and Infinity have no JSON form)")
        return value == 0.0 and math.copysign(1.0, value) < 0
    if kind is dict or isinstance(value, dict):
        negative = False
        for key, item in value.items():
            if not isinstance(key, str):
                raise _Invalid(f"key {key!r} is {type(key).__name__}; object keys must be strings")
            try:
                negative |= _scan(item)
            except _Invalid as exc:
                exc.keys.append(key)
                raise
        return negative
    if kind is list or isinstance(value, list):
        negative = False
        for index, item in enumerate(value):
            try:
                negative |= _scan(item)
            except _Invalid as exc:
                exc.keys.append(index)
                raise
        return negative
    if isinstance(value, (int, str)):
        return False
    if isinstance(value, tuple):
        raise _Invalid("tuple is not a JSON value; return a list")
    raise _Invalid(
        f"{type(value).__name__} is not a JSON value (expected dict, list, str, int, float, bool or None)"
    )


def _without_negative_zero(value: Any) -> Any:
    if isinstance(value, float):
        return 0.0 if value == 0.0 else value
    if isinstance(value, dict):
        return {key: _without_negative_zero(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_without_negative_zero(item) for item in value]
    return value


def _find_unencodable(value: Any) -> list[str | int] | None:
    """Path of the first string (or key) that UTF-8 cannot encode (a lone surrogate)."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return []
        return None
    if isinstance(value, dict):
        for key, item in value.items():
            found = _find_unencodable(key)
            if found is None:
                found = _find_unencodable(item)
            if found is not None:
                return [key, *found]
    if isinstance(value, list):
        for index, item in enumerate(value):
            found = _find_unencodable(item)
            if found is not None:
                return [index, *found]
    return None


# The fast path: the C encoder, configured exactly like the careful path's json.dumps, on
# values made only of the exact JSON types (checked one container at a time, not one leaf at a
# time). Anything else, anything it raises on, and any output that may hold a negative zero
# go to the careful path, so both always produce the same bytes and the same errors.
_ENCODE = json.JSONEncoder(
    sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False, check_circular=False
).encode
_LEAF_TYPES = frozenset((str, int, float, bool, type(None)))
_MAYBE_NEGATIVE_ZERO = re.compile(r"-0\.0(?![0-9])")  # "-0.0" not followed by more digits
_join = "".join


def _plain(value: Any) -> bool:
    """True if ``value`` holds only exact dict (str keys), list, str, int, float, bool, None.

    Subclasses, tuples, sets and non-string keys make it False (the careful path decides);
    a value nested too deeply (or circular) raises RecursionError."""
    kind = type(value)
    if kind is dict:
        try:
            _join(value)  # C-level: TypeError if any key is not a string
        except TypeError:
            return False
        children: Any = value.values()
    elif kind is list:
        children = value
    else:
        return kind in _LEAF_TYPES
    if _LEAF_TYPES.issuperset(map(type, children)):
        return True
    for child in children:
        child_kind = type(child)
        if child_kind is dict or child_kind is list:
            if not _plain(child):
                return False
        elif child_kind not in _LEAF_TYPES:
            return False
    return True


_MSGSPEC = msgspec.json.Encoder(order="sorted").encode
# msgspec output that may differ from the standard encoder's: a negative zero, a float with an
# exponent (msgspec writes 1e16 and 1e-9 where Python writes 1e+16 and 1e-09) and a float under
# 1e-4 (msgspec: 0.00001, Python: 1e-05). Strings may match too: then the stdlib decides.
_MSGSPEC_DIFFERS = re.compile(rb"[0-9]e|0\.0000[0-9]|-0\.0(?![0-9])")
_EXPONENT, _TINY, _MINUS_ZERO = (
    re.compile(part) for part in (rb"[0-9]e", rb"0\.0000[0-9]", rb"-0\.0(?![0-9])")
)
# Python refuses str() of an int over 4300 digits (msgspec raises too; checked again, cheaply)
_HUGE_INT = re.compile(rb"[0-9]{4300}")


def _may_differ(data: bytes) -> bool:
    """Whether msgspec's ``data`` may hold a float Python spells otherwise (literal
    look-ups first: the regex alone walks every byte of a batch)."""
    return (
        (b"e" in data and _EXPONENT.search(data) is not None)
        or (b"0.0000" in data and _TINY.search(data) is not None)
        or (b"-0.0" in data and _MINUS_ZERO.search(data) is not None)
    )


def _fast_bytes(value: Any) -> bytes | None:
    """The canonical UTF-8 JSON of ``value`` by a fast path, or None: use the careful one."""
    try:
        if not _plain(value):
            return None
        data = _MSGSPEC(value)
    except (RecursionError, UnicodeEncodeError, TypeError, ValueError):  # deep, surrogate, huge int
        return None
    if (
        b"null" not in data
        and not (
            (b"e" in data or b"0.0000" in data or b"-0.0" in data) and _MSGSPEC_DIFFERS.search(data)
        )
        and (len(data) < 4300 or not _HUGE_INT.search(data))
    ):
        return data
    text = _fast_text(value)  # the standard encoder: refuses NaN, writes Python's repr
    if text is None:
        return None
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        return None  # a lone surrogate: the careful path names where it is


def _fast_text(value: Any) -> str | None:
    """The canonical JSON text of a :func:`_plain` value by the standard C encoder, or None."""
    try:
        text = _ENCODE(value)
    except (TypeError, ValueError, RecursionError):  # NaN/Infinity, an int over 4300 digits
        return None
    if "-0.0" in text and _MAYBE_NEGATIVE_ZERO.search(text):
        return None
    return text


def canonical_bytes(value: Any, *, path: Iterable[str | int] = ()) -> bytes:
    """The canonical UTF-8 JSON of ``value``.

    Raises :class:`CalculationError` naming where inside the value the problem is, e.g.
    ``$.u001.risk: nan is not allowed``; ``path`` prefixes that location (a user id).
    """
    data = _fast_bytes(value)
    if data is not None:
        return data
    return careful_canonical_bytes(value, path=path)


def careful_canonical_bytes(value: Any, *, path: Iterable[str | int] = ()) -> bytes:
    """:func:`canonical_bytes` without the fast path: every value is walked before encoding.

    Always gives the same bytes (or the same error) as :func:`canonical_bytes`; kept public so
    tests can prove it."""
    prefix = list(path)
    try:
        negative_zero = _scan(value)
    except _Invalid as exc:
        where = format_path(prefix + exc.keys[::-1])
        raise CalculationError(f"{where}: {exc.reason}") from None
    except RecursionError:
        raise CalculationError(
            f"{format_path(prefix)}: value is nested too deeply to store as JSON"
        ) from None
    if negative_zero:
        value = _without_negative_zero(value)
    try:
        text = json.dumps(
            value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
        )
    except ValueError as exc:  # an int too long for str() (Python's 4300-digit limit)
        raise CalculationError(f"{format_path(prefix)}: {exc}") from None
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        where = format_path(prefix + (_find_unencodable(value) or []))
        raise CalculationError(
            f"{where}: string holds a lone surrogate that UTF-8 cannot encode"
        ) from None


# user ids JSON writes as they are (no escape, ASCII): the scalar fast path of user_line
_PLAIN_ID = re.compile(r"[A-Za-z0-9_.:@/+=-]*\Z").match
_float_repr = float.__repr__
_int_repr = int.__repr__


def _scalar_line(user_id: str, value: Any) -> bytes | None:
    """The line of an exact float or int with a plain user id, or None (the general path):
    ``json.dumps`` writes such a float as ``float.__repr__`` (``-0.0`` as ``0.0``) and an
    int as ``int.__repr__``; NaN, the infinities and ints over 4300 digits are left to the
    general path, which refuses them. The line's head (``["<user id>",``) of the last user
    is kept: a pass writes one user's values for every cell in a row."""
    global _LAST_HEAD
    kind = type(value)
    if kind is float:
        if value - value != 0.0:  # NaN or an infinity
            return None
        text = _float_repr(value) if value != 0.0 else "0.0"
    elif kind is int:
        if not -_BIG < value < _BIG:
            return None
        text = _int_repr(value)
    else:
        return None
    last = _LAST_HEAD  # one (user id, head) pair, replaced whole: safe across threads
    if user_id is last[0]:
        head = last[1]
    elif _PLAIN_ID(user_id) is None:
        return None
    else:
        head = f'["{user_id}",'.encode()
        _LAST_HEAD = (user_id, head)
    return head + text.encode() + b"]"


_LAST_HEAD: tuple[str | None, bytes] = (None, b"")
_INF = float("inf")
_NEG_INF = float("-inf")
_BIG = 10**4000  # far under Python's 4300-digit str() limit


def user_line(user_id: str, value: Any) -> bytes:
    """One per_user stream line without its newline: ``["<user id>",<value>]``."""
    if type(user_id) is str:
        kind = type(value)
        if kind is float or kind is int:
            line = _scalar_line(user_id, value)
            if line is not None:
                return line
        data = _fast_bytes([user_id, value])  # the line is the canonical JSON of this pair
        if data is not None:
            return data
    return careful_user_line(user_id, value)


_STR_ONLY = frozenset((str,))


def scalar_user_lines(ids: list[str], values: list[Any]) -> list[bytes]:
    """:func:`user_line` of many (user id, value) pairs with one msgspec call: the same bytes
    and, for a bad pair, the same error. Meant for what
    :class:`~btbuild.storage.writer.ResultWriter` batches (``str`` ids, finite floats and
    ints); anything else (ids that are not ``str``, values that are not exact JSON scalars),
    a NaN (msgspec's ``null``), an int over 4300 digits, a line holding ``],[`` (the lines
    would not split) and a float msgspec spells differently (an exponent, under 1e-4, a
    negative zero: :data:`_MSGSPEC_DIFFERS`) is encoded line by line instead."""
    if not ids:
        return []
    if not (_STR_ONLY.issuperset(map(type, ids)) and _LEAF_TYPES.issuperset(map(type, values))):
        return list(map(user_line, ids, values))
    try:
        data = _MSGSPEC(list(zip(ids, values, strict=True)))
    except (UnicodeEncodeError, TypeError, ValueError):  # a lone surrogate: the careful path
        return list(map(user_line, ids, values))
    lines = data[1:-1].replace(b"],[", b"]\n[").split(b"\n")
    if (
        len(lines) != len(ids)
        or b"null" in data
        or max(map(len, lines)) >= 4300  # maybe an int too long for str() (or a long text)
    ):
        return list(map(user_line, ids, values))
    if _may_differ(data):
        search = _MSGSPEC_DIFFERS.search
        return [
            line if search(line) is None else user_line(user_id, value)
            for user_id, value, line in zip(ids, values, lines, strict=True)
        ]
    return lines


def careful_user_line(user_id: str, value: Any) -> bytes:
    """:func:`user_line` without the fast path (same bytes, same errors)."""
    if not isinstance(user_id, str):
        raise CalculationError(
            f"user id {user_id!r} is {type(user_id).__name__}; user ids must be strings"
        )
    body = careful_canonical_bytes(value, path=[user_id])
    return b"[" + careful_canonical_bytes(user_id, path=[user_id]) + b"," + body + b"]"


def parse_user_line(line: bytes) -> tuple[str, Any]:
    """Inverse of :func:`user_line`; raises ``ValueError`` for anything malformed."""
    pair = json.loads(line)
    if not isinstance(pair, list) or len(pair) != 2 or not isinstance(pair[0], str):
        raise ValueError("not a [user id, value] line")
    return pair[0], pair[1]


_DECODE = msgspec.json.Decoder().decode
_DECODE_PAIRS = msgspec.json.Decoder(list[tuple[str, Any]]).decode


def user_id_of_line(line: bytes) -> str:
    """The user id of a :func:`user_line` without parsing its value: the text between the
    opening quotes when it holds no escape (the first quote then closes it), else the parsed
    line's; ``ValueError`` for a malformed line."""
    if line.startswith(b'["'):
        end = line.find(b'"', 2)
        raw = line[2:end]
        if end > 2 and line[end + 1 : end + 2] == b"," and b"\\" not in raw:
            return raw.decode()  # (a UnicodeDecodeError is a ValueError)
    return parse_user_line(line)[0]


def user_shard(user_id: str, shards: int) -> int:
    """Which part of a sharded per_user cell computes ``user_id`` (``[execution] user_shards``);
    the same in every process and on every machine."""
    return xxhash.xxh3_64_intdigest(user_id.encode()) % shards


_LINE_ID = re.compile(rb'\["([^"\\]*)",')  # a user line's id when it holds no escape


def lines_in_part(lines: list[bytes], part: int, parts: int) -> list[bytes]:
    """The user lines whose user is in part ``part`` of ``parts`` (:func:`user_shard`), read
    without parsing the values (a plain id's UTF-8 bytes are the line's bytes);
    ``ValueError`` for a line that names no user."""
    digest, match = xxhash.xxh3_64_intdigest, _LINE_ID.match
    chosen = []
    for line in lines:
        plain = match(line)
        raw = plain.group(1) if plain is not None else user_id_of_line(line).encode()
        if digest(raw) % parts == part:
            chosen.append(line)
    return chosen


def parse_user_lines(lines: list[bytes]) -> list[tuple[str, Any]]:
    """:func:`parse_user_line` of many lines with one parser call where it gives the same
    values (it does unless a string holds a lone surrogate escape);
    ``ValueError`` for anything malformed. (Lines that are not valid alone but parse as two
    pairs once joined are caught by the result hash every reader checks.)"""
    if not lines:
        return []
    try:  # msgspec checks the shape: each line a [str, value] pair
        pairs: list[tuple[str, Any]] = _DECODE_PAIRS(b"[" + b",".join(lines) + b"]")
    except msgspec.DecodeError:  # a ValidationError too
        pairs = []  # malformed, or what only json.loads reads: decide line by line
    if len(pairs) != len(lines):
        return [parse_user_line(line) for line in lines]
    return pairs


def loads(data: bytes) -> Any:
    """``json.loads`` of canonical bytes, by msgspec where it reads them."""
    try:
        return _DECODE(data)
    except msgspec.DecodeError:
        return json.loads(data)
