"""What hashing needs to know about one source file, and its cacheable JSON form.

Facts are computed once per distinct file content (see :class:`btbuild.hashing.HashCache`):
the whole-module code hash, the imports, and per top-level statement its hash, the
module-level names it binds and the global names it reads. The code hash of one *entry*
(``Target.entry_attr``) is derived from them without parsing again
(:meth:`FileFacts.entry_code_hash`).
"""

from __future__ import annotations

import builtins
import importlib.util
import re
from collections.abc import Iterable
from dataclasses import dataclass

from btbuild.errors import WorkspaceError
from btbuild.hashing.imports import ImportRecord
from btbuild.hashing.normalize import analyze_module, module_hash

_HEX32 = re.compile(r"[0-9a-f]{32}\Z")
_BUILTINS = frozenset(dir(builtins))
# Standard modules whose decorators, bases and calls run at import time keep no state another
# module could read back (``@dataclass``, ``@lru_cache``, ``class C(Enum)``, ``re.compile``).
# Import-time code reaching any other imported module may register something there (a
# registry's ``@register``, a base class's ``__init_subclass__``, pandas' accessors) that
# code importing that module reads: see :meth:`FileFacts.slice`.
_STATELESS_MODULES = frozenset(
    {
        "abc",
        "collections",
        "contextlib",
        "dataclasses",
        "datetime",
        "decimal",
        "enum",
        "fractions",
        "functools",
        "itertools",
        "math",
        "numbers",
        "operator",
        "re",
        "statistics",
        "string",
        "typing",
        "typing_extensions",
    }
)


@dataclass(frozen=True)
class StatementFacts:
    """One top-level statement: its normalized hash and how it links to the others."""

    digest: str
    defines: tuple[str, ...] = ()  # module-level names it binds, sorted
    refs: tuple[str, ...] = ()  # global names it reads, sorted
    always: bool = False  # not a pure definition: in every entry's hash
    effectful: bool = False  # a definition that runs code at import time
    modules: tuple[str, ...] = ()  # top-level modules an import statement names, sorted
    effect_refs: tuple[str, ...] = ()  # globals read at import time (effectful only), sorted
    # (module, level, name) of every import it runs, "" naming the module object; in order
    imports: tuple[tuple[str, int, str], ...] = ()

    def to_json(self) -> list[object]:
        return [
            self.digest,
            list(self.defines),
            list(self.refs),
            int(self.always) | int(self.effectful) << 1,
            list(self.modules),
            list(self.effect_refs),
            [list(item) for item in self.imports],
        ]

    @classmethod
    def from_json(cls, value: object) -> StatementFacts | None:
        if not (isinstance(value, list) and len(value) == 7):
            return None
        digest, defines, refs, flags, modules, effect_refs, imports = value
        if not (
            isinstance(imports, list)
            and all(
                isinstance(item, list)
                and len(item) == 3
                and isinstance(item[0], str)
                and type(item[1]) is int
                and isinstance(item[2], str)
                for item in imports
            )
        ):
            return None
        if not (isinstance(digest, str) and _HEX32.match(digest)):
            return None
        if type(flags) is not int or not 0 <= flags <= 3:
            return None
        lists = (defines, refs, modules, effect_refs)
        if not all(
            isinstance(item, list) and all(isinstance(n, str) for n in item) for item in lists
        ):
            return None
        return cls(
            digest,
            tuple(defines),
            tuple(refs),
            bool(flags & 1),
            bool(flags & 2),
            tuple(modules),
            tuple(effect_refs),
            tuple((item[0], item[1], item[2]) for item in imports),
        )


@dataclass(frozen=True)
class FileFacts:
    """The normalized code hash of a file, its imports (unresolved) and statement facts.

    ``statements`` is None when the per-statement facts are unknown; ``dynamic`` marks a
    module that reaches its own globals by name (``globals()``, ``eval``, ``sys.modules``
    ...). In both cases every entry of the file gets the whole-module hash.
    """

    code_hash: str
    imports: tuple[ImportRecord, ...]
    statements: tuple[StatementFacts, ...] | None = None
    dynamic: bool = False
    paths: tuple[str, ...] = ()  # string literals that may name a data file the code reads
    # what the code reads at run time besides its code (btbuild/hashing/reads.py)
    env: tuple[str, ...] = ()  # environment variable names, sorted; "*": the whole environment
    reads: tuple[str, ...] = ()  # "clock", "docs" (docstrings), "source" (its text), sorted
    any_module: str = ""  # why it may import any workspace module ("" if it cannot)
    docs: str = ""  # hash of the docstrings the code hash drops ("" if none)

    def entry_code_hash(self, entry_attr: str) -> str:
        """The code hash of what ``entry_attr`` needs from this module.

        That is: the statements binding the entry name, every statement binding a global
        name they read (transitively), every top-level statement that is not a pure
        definition (calls, ``if`` blocks, attribute or item assignments, ``__future__``
        and star imports), and every definition running code at import time (a call,
        decorator or base class) that shares a global name or an imported module with
        what is already included, since it may have mutated it. Falls back to
        :attr:`code_hash` when the module is dynamic or the entry is not bound by a
        top-level definition.
        """
        return self.slice_hash(self.slice((entry_attr.split(".")[0],)))

    def slice_hash(self, included: frozenset[int] | None) -> str:
        """The code hash of the statements ``included`` (None or all of them: the module's)."""
        if included is None or self.statements is None or len(included) == len(self.statements):
            return self.code_hash
        return module_hash([self.statements[index].digest for index in sorted(included)])

    def slice(self, names: Iterable[str]) -> frozenset[int] | None:
        """The indices of the statements that module-level ``names`` need (see
        :meth:`entry_code_hash`); None when only the whole module is safe (dynamic module,
        unknown statements, a name no top-level definition binds)."""
        statements = self.statements
        if statements is None or self.dynamic:
            return None
        binders: dict[str, list[int]] = {}
        for index, statement in enumerate(statements):
            for name in statement.defines:
                binders.setdefault(name, []).append(index)
        roots = list(names)
        if any(root not in binders for root in roots):
            return None

        def close(start: list[int], included: set[int]) -> None:
            pending = list(start)
            while pending:
                index = pending.pop()
                if index not in included:
                    included.add(index)
                    for name in statements[index].refs:
                        pending.extend(binders.get(name, ()))

        included: set[int] = set()
        close([i for i, statement in enumerate(statements) if statement.always], included)
        close([index for root in roots for index in binders[root]], included)
        effects: dict[int, set[str]] = {}
        outward: list[int] = []
        for index, statement in enumerate(statements):
            if statement.effectful:  # what the code it runs at import time can touch
                reached: set[int] = set()
                close([i for name in statement.effect_refs for i in binders.get(name, ())], reached)
                reached.discard(index)
                if any(_stateful_import(statements[i]) for i in reached):
                    outward.append(index)
                effects[index] = self._tokens(statement.effect_refs, (), binders).union(
                    *(self._statement_tokens(i, binders) for i in reached)
                )
        # import-time code calling into another module may change that module's state (a
        # registry filled by ``@register``), which any importer of it can read: such effects
        # are in every slice of this module, like its non-definition statements
        close(outward, included)
        while True:
            tokens = set().union(*(self._statement_tokens(i, binders) for i in included))
            added = [
                index
                for index, touched in effects.items()
                if index not in included and not touched.isdisjoint(tokens)
            ]
            if not added:
                break
            close(added, included)
        return frozenset(included)

    def _statement_tokens(self, index: int, binders: dict[str, list[int]]) -> set[str]:
        assert self.statements is not None
        statement = self.statements[index]
        return self._tokens(statement.refs, statement.defines, binders)

    def _tokens(
        self, refs: tuple[str, ...], defines: tuple[str, ...], binders: dict[str, list[int]]
    ) -> set[str]:
        """The shared state names touch: module-level names and the modules they import."""
        assert self.statements is not None
        tokens: set[str] = set()
        for name in (*refs, *defines):
            sources = binders.get(name)
            if sources is None:
                if name not in _BUILTINS:
                    tokens.add(f"name:{name}")
                continue
            tokens.add(f"name:{name}")
            for index in sources:
                tokens.update(f"module:{module}" for module in self.statements[index].modules)
        return tokens

    def to_json(self) -> dict[str, object]:
        return {
            "code": self.code_hash,
            "imports": [
                [record.module, record.level, list(record.names)] for record in self.imports
            ],
            "statements": None
            if self.statements is None
            else [statement.to_json() for statement in self.statements],
            "dynamic": self.dynamic,
            "paths": list(self.paths),
            "env": list(self.env),
            "reads": list(self.reads),
            "any_module": self.any_module,
            "docs": self.docs,
        }

    @classmethod
    def from_json(cls, value: object) -> FileFacts | None:
        """Rebuild from :meth:`to_json`; anything malformed gives None (a cache miss)."""
        if not isinstance(value, dict):
            return None
        code, imports = value.get("code"), value.get("imports")
        if not isinstance(code, str) or not _HEX32.match(code) or not isinstance(imports, list):
            return None
        raw_statements, dynamic = value.get("statements"), value.get("dynamic")
        if not isinstance(dynamic, bool) or not (
            raw_statements is None or isinstance(raw_statements, list)
        ):
            return None
        lists: list[tuple[str, ...]] = []
        for key in ("paths", "env", "reads"):  # missing in entries written before: a miss
            items = value.get(key)
            if not (isinstance(items, list) and all(isinstance(item, str) for item in items)):
                return None
            lists.append(tuple(items))
        paths, env, reads = lists
        any_module, docs = value.get("any_module"), value.get("docs")
        if not (isinstance(any_module, str) and isinstance(docs, str)):
            return None
        records: list[ImportRecord] = []
        for item in imports:
            if not (isinstance(item, list) and len(item) == 3):
                return None
            module, level, names = item
            if not (
                isinstance(module, str)
                and type(level) is int
                and level >= 0
                and isinstance(names, list)
                and all(isinstance(name, str) for name in names)
            ):
                return None
            records.append(ImportRecord(module, level, tuple(names)))
        statements: tuple[StatementFacts, ...] | None = None
        if raw_statements is not None:
            parsed = [StatementFacts.from_json(item) for item in raw_statements]
            if any(item is None for item in parsed):
                return None
            statements = tuple(item for item in parsed if item is not None)
        return cls(
            code,
            tuple(records),
            statements,
            dynamic,
            paths,
            env,
            reads,
            any_module,
            docs,
        )


def _stateful_import(statement: StatementFacts) -> bool:
    """Whether ``statement`` imports from a module whose state import-time code could change
    (relative imports and everything but :data:`_STATELESS_MODULES`)."""
    return any(
        level or module.split(".")[0] not in _STATELESS_MODULES
        for module, level, _ in statement.imports
    )


def decode_source(raw: bytes, *, path: str) -> str:
    """Decode a Python file like the interpreter does (BOM, ``# -*- coding`` cookie, UTF-8)."""
    try:
        return importlib.util.decode_source(raw)
    except (UnicodeDecodeError, SyntaxError, LookupError) as error:
        raise WorkspaceError(
            f"cannot read this file as Python source text: {error}", path=path
        ) from None


def analyze_source(source: str, *, path: str = "<string>") -> FileFacts:
    """Parse once; derive the code hash, the import records and the statement facts."""
    analysis = analyze_module(source, path=path)
    statements = tuple(
        StatementFacts(
            digest=info.digest,
            defines=tuple(sorted(info.defines)),
            refs=tuple(sorted(info.refs)),
            always=info.always,
            effectful=info.effectful,
            modules=tuple(sorted(info.modules)),
            effect_refs=tuple(sorted(info.effect_refs)) if info.effectful else (),
            imports=tuple(dict.fromkeys(info.imports)),
        )
        for info in analysis.statements
    )
    reads = analysis.reads
    return FileFacts(
        analysis.code_hash,
        analysis.imports,
        statements,
        analysis.dynamic,
        analysis.paths,
        tuple(sorted(reads.env)) if reads else (),
        tuple(kind for kind in ("clock", "docs", "source") if reads and getattr(reads, kind)),
        reads.any_module if reads else "",
        analysis.docs,
    )
