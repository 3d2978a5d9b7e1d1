"""Normalize calculation source so that only behaviour reaches the code hash.

Everything runs on the standard library's :mod:`ast` (one parse, one scope pass, one
``ast.unparse`` per top-level statement); that is about ten times faster than the libcst
``ScopeProvider`` pipeline it replaced, with the same canonical form:

1. parse with :func:`ast.parse`, which already drops comments, blank lines, quote style,
   redundant parentheses, trailing commas and line wrapping; drop module, class and
   function docstrings (a body that was only a docstring becomes ``pass``);
2. resolve scopes with Python's own rules (function, lambda, class and comprehension
   scopes, ``global``/``nonlocal``, class bodies invisible to nested functions, the first
   iterable of a comprehension evaluated outside it) and rename every *function-local*
   binding to ``_L0``, ``_L1``, ... in order of first appearance; numbering restarts at
   every top-level statement, so one function's locals never shift another's;
3. print every top-level statement with :func:`ast.unparse` and hash it on its own.

What is renamed: variables bound inside a function (assignments, loop and ``with`` targets,
``except ... as`` names, walrus targets outside comprehensions, ``del`` targets),
comprehension and generator variables anywhere, and the locals of nested closures; a
closure's free variable is renamed together with the binding it points at. What is never
renamed: parameters (callers may pass them by keyword), globals and names declared
``global``/``nonlocal``, class-body names (attributes), attributes, keyword arguments,
imports, ``match`` captures, and nested ``def``/``class`` names (their ``__name__`` is
observable). A function that calls ``locals()``, ``vars()``, ``dir()``, ``eval()`` or
``exec()`` keeps all its names, and so do the functions around it.

Names the user wrote that already start with ``_L`` are escaped to ``_L_<name>`` in the
canonical form, so a user's global ``_L0`` can never be confused with a renamed local.

The same pass records, for every top-level statement, the module-level names it binds and
the global names it reads: :meth:`btbuild.hashing.facts.FileFacts.entry_code_hash` uses them
to hash only what one entry needs.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from typing import Any

from btbuild.errors import WorkspaceError
from btbuild.hashing.digest import hash_json, hash_text
from btbuild.hashing.imports import ImportRecord
from btbuild.hashing.reads import Reads, scan_reads
from btbuild.hashing.scopes import Analyzer, BindingKey, StatementInfo

LOCAL_PREFIX = "_L"
_DOCSTRING_OWNERS = (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)


@dataclass
class ModuleAnalysis:
    """The result of :func:`analyze_module`."""

    statements: list[StatementInfo]
    texts: list[str]  # canonical text of each top-level statement
    imports: tuple[ImportRecord, ...]
    dynamic: bool  # reaches module globals by name: only the whole-module hash is safe
    paths: tuple[str, ...] = ()  # string literals that may name a data file, sorted
    reads: Reads | None = None  # environment, docstrings, source text, dynamic imports
    docs: str = ""  # hash of the docstrings the code hash drops

    @property
    def canonical(self) -> str:
        return "\n".join(self.texts)

    @property
    def code_hash(self) -> str:
        return module_hash([statement.digest for statement in self.statements])


def module_hash(statement_digests: list[str]) -> str:
    """The code hash of a sequence of top-level statements (the whole module, or an entry's slice)."""
    return hash_json(statement_digests)


def parse_source(source: str, *, path: str = "<string>") -> ast.Module:
    """Parse ``source`` with :mod:`ast`; a syntax error names ``path`` and the line."""
    try:
        return ast.parse(source, filename=path)
    except SyntaxError as error:
        raise WorkspaceError(
            f"cannot hash this file, it is not valid Python: {error.msg}",
            path=path,
            line=error.lineno,
        ) from None
    except ValueError as error:  # e.g. null bytes
        raise WorkspaceError(
            f"cannot hash this file, it is not valid Python: {error}", path=path
        ) from None
    except (RecursionError, MemoryError):
        raise WorkspaceError(
            "cannot hash this file, its expressions are nested too deeply", path=path
        ) from None


def analyze_module(source: str, *, path: str = "<string>") -> ModuleAnalysis:
    """Parse, normalize and hash ``source`` statement by statement; see the module docstring."""
    tree = parse_source(source, path=path)
    reads = scan_reads(tree, source)
    docs = _strip_docstrings(tree)
    analyzer = Analyzer()
    try:
        analyzer.run(tree)
        renames = analyzer.resolve()
        _dynamic_imports(analyzer, reads)
        texts: list[str] = []
        for statement in tree.body:
            _rename(statement, renames)
            texts.append(ast.unparse(statement))
    except RecursionError:
        raise WorkspaceError(
            "cannot hash this file, its expressions are nested too deeply", path=path
        ) from None
    for info, text in zip(analyzer.statements, texts, strict=True):
        info.digest = hash_text(text)
    return ModuleAnalysis(
        analyzer.statements,
        texts,
        tuple(dict.fromkeys(analyzer.imports)),
        analyzer.dynamic,
        tuple(sorted(analyzer.paths)),
        reads,
        hash_json(docs) if docs else "",
    )


def _dynamic_imports(analyzer: Analyzer, reads: Reads) -> None:
    """``importlib.import_module("a.b")`` is ``import a.b``; ``import_module(".x", pkg)`` is
    ``from . import x``: recorded like the import statements they stand for."""
    for index, module, level in reads.imports:
        if level:
            package, _, name = module.rpartition(".")
            record = ImportRecord(package, level, (name,))
            analyzer.statements[index].imports.append((package, level, name))
        else:
            record = ImportRecord(module)
            analyzer.statements[index].imports.append((module, 0, ""))
        analyzer.imports.append(record)


def normalized_tree(source: str, *, path: str = "<string>") -> ast.Module:
    """The normalized syntax tree of ``source`` (docstrings dropped, locals renamed as in
    :func:`analyze_module`), nodes keeping their original line numbers: what
    :mod:`btbuild.sim.changes` compares statement by statement."""
    tree = parse_source(source, path=path)
    _strip_docstrings(tree)
    analyzer = Analyzer()
    try:
        analyzer.run(tree)
        renames = analyzer.resolve()
        for statement in tree.body:
            _rename(statement, renames)
    except RecursionError:
        raise WorkspaceError(
            "cannot hash this file, its expressions are nested too deeply", path=path
        ) from None
    return tree


def normalize_source(source: str, *, path: str = "<string>") -> str:
    """The canonical form of ``source``: equal for sources that differ only cosmetically."""
    return analyze_module(source, path=path).canonical


def code_hash(source: str, *, path: str = "<string>") -> str:
    """The xxh3_128 hex digest of the whole normalized module (what a layer contributes)."""
    return analyze_module(source, path=path).code_hash


def _escape(name: str) -> str:
    return f"{LOCAL_PREFIX}_{name}" if name.startswith(LOCAL_PREFIX) else name


def _rename(statement: ast.stmt, renames: dict[int, BindingKey]) -> None:
    """Canonical local names in pre-order (document) order; escape user ``_L`` names."""
    canonical: dict[BindingKey, str] = {}
    stack: list[ast.AST] = [statement]
    while stack:
        # ``kind is ast.X`` narrows the node below (faster than isinstance in this per-node
        # loop); mypy cannot follow identity checks of a type, so ``node`` is typed Any
        node: Any = stack.pop()
        kind = type(node)
        if kind is ast.Name or kind is ast.ExceptHandler:
            attribute = "id" if kind is ast.Name else "name"
            value = getattr(node, attribute)
            if value is not None:
                key = renames.get(id(node))
                if key is not None:
                    name = canonical.get(key)
                    if name is None:
                        name = canonical[key] = f"{LOCAL_PREFIX}{len(canonical)}"
                    setattr(node, attribute, name)
                elif value.startswith(LOCAL_PREFIX):
                    setattr(node, attribute, _escape(value))
        elif kind is ast.arg:
            node.arg = _escape(node.arg)
        elif kind is ast.Attribute:
            node.attr = _escape(node.attr)
        elif kind is ast.keyword:
            if node.arg is not None:
                node.arg = _escape(node.arg)
        elif kind is ast.FunctionDef or kind is ast.AsyncFunctionDef or kind is ast.ClassDef:
            node.name = _escape(node.name)
        elif kind is ast.alias:
            if node.asname is not None:
                node.asname = _escape(node.asname)
            elif "." not in node.name:
                node.name = _escape(node.name)
        elif kind is ast.Global or kind is ast.Nonlocal:
            node.names = [_escape(name) for name in node.names]
        elif kind is ast.MatchAs or kind is ast.MatchStar:
            if node.name is not None:
                node.name = _escape(node.name)
        elif kind is ast.MatchMapping and node.rest is not None:
            node.rest = _escape(node.rest)
        children = list(ast.iter_child_nodes(node))
        children.reverse()
        stack.extend(children)


def _strip_docstrings(tree: ast.Module) -> list[str]:
    """Drop module, class and function docstrings, and the ``u`` prefix of string constants;
    return the docstrings dropped (code reading ``__doc__`` makes them inputs)."""
    dropped: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant):
            node.kind = None
        elif isinstance(node, _DOCSTRING_OWNERS):
            body = node.body
            first = body[0] if body else None
            if (
                isinstance(first, ast.Expr)
                and isinstance(first.value, ast.Constant)
                and isinstance(first.value.value, str)
            ):
                owner = "" if isinstance(node, ast.Module) else node.name
                dropped.append(f"{owner}:{first.value.value}")
                del body[0]
                if not body and not isinstance(node, ast.Module):
                    body.append(ast.Pass())
    return dropped
