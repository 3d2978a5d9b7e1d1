"""A changed function reached without its name being read by the entry (a dispatch table, a
decorator's registry, ``getattr``, a subclass) must run too: before, such a change asked for
no coverage, and a change for a user the replay did not sample was skipped as cosmetic
(tests/sim/corpus of the red team: the stored result of that user stayed the old code's)."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from test_change_coverage import LAYER, required, version

HEAD = """\
import sys


def plain(x):
    return x


"""

TAIL = """

def calc(ctx):
    total = ctx.user["portfolio"]["cash"]
    return {dispatch}
"""

CASES = {
    "a dispatch dict": (
        'def vip(x):\n    return x * 1.0\n\n\nSPECIAL = {"u000099": vip}\n',
        "SPECIAL.get(ctx.user.id, plain)(total)",
    ),
    "a table filled in place": (
        'def vip(x):\n    return x * 1.0\n\n\nSPECIAL = {}\nSPECIAL.update({"u000099": vip})\n',
        "SPECIAL.get(ctx.user.id, plain)(total)",
    ),
    "a decorator's registry": (
        "HANDLERS = {}\n\n\ndef handler(name):\n    def wrap(fn):\n        HANDLERS[name] = fn\n"
        '        return fn\n\n    return wrap\n\n\n@handler("u000099")\ndef vip(x):\n'
        "    return x * 1.0\n",
        "HANDLERS.get(ctx.user.id, plain)(total)",
    ),
    "getattr on the module": (
        "def vip(x):\n    return x * 1.0\n",
        'getattr(sys.modules[__name__], "plain" if ctx.user.id != "u000099" else "vip")(total)',
    ),
    "a subclass of a class the entry names": (
        "class Base:\n    def __call__(self, x):\n        return x\n\n\n"
        "class Vip(Base):\n    def __call__(self, x):\n        return x * 1.0\n",
        "[k for k in Base.__subclasses__() if k.__name__ == ctx.user.id][0]()(total)",
    ),
}


def _probed(change: Any, path: Path) -> tuple[Any, dict[str, object], Callable[[str], object]]:
    """The new version of ``path`` compiled with the change's probes, and ``calc(user)``
    calling its ``calc`` as the runner does (the output canonicalized)."""
    from types import SimpleNamespace

    from btbuild.sim.canonical import canonical
    from btbuild.sim.probes import Probes

    probes = Probes(change.new_direct)
    namespace: dict[str, object] = {}
    probes.prime(namespace)
    exec(probes.compile(path.read_bytes(), path), namespace)

    def calc(user: str) -> object:
        return canonical(namespace["calc"](SimpleNamespace(user=_User(user))))  # type: ignore[operator]

    return probes, namespace, calc


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_function_reached_without_its_name_must_run(tmp_path: Path, case: str) -> None:
    middle, dispatch = CASES[case]
    old = HEAD + middle + TAIL.format(dispatch=dispatch)
    new = old.replace("return x * 1.0", "return x * 1.5")
    assert new != old
    from btbuild.sim.changes import code_change

    change = code_change(version(tmp_path / "a", old), version(tmp_path / "b", new))
    line = next(n for n, text in enumerate(new.splitlines(), 1) if "x * 1.5" in text)
    assert line in required(change, "new").get("calculations/calc.py", []), case


def test_an_unreached_layer_function_still_asks_for_nothing(tmp_path: Path) -> None:
    """The rule stays a superset, not everything: the entry never reads ``unused``."""
    from btbuild.sim.changes import code_change

    change = code_change(
        version(tmp_path / "a"), version(tmp_path / "b", layer=LAYER.replace("x + 1", "x + 2"))
    )
    assert change.empty


ADJUST = """\
def adjust(x, user, rate):
    if user == "u000099":
        return x * rate
    return x


def calc(ctx):
    worth = adjust(ctx.user["portfolio"]["cash"], ctx.user.id, 1.0)
    return {"worth": worth}
"""


def test_a_changed_argument_makes_the_callees_readers_of_it_run(tmp_path: Path) -> None:
    """Red team: ``adjust(worth, ctx.user.id, 1.0)`` -> ``1.5``: the changed line ran for
    every user, ``adjust`` (unchanged) uses the rate only for u000099, whom no fabricated
    world holds and the replay did not sample (100 users, ``replay_users = 10``): skipped as
    cosmetic, with that user's stale results. The callee's statements reading its
    parameters must run now, and its ``if`` go both ways."""
    from btbuild.sim.changes import code_change

    change = code_change(
        version(tmp_path / "a", ADJUST), version(tmp_path / "b", ADJUST.replace("1.0)", "1.5)"))
    )
    assert required(change, "new") == {"calculations/calc.py": [2, 3, 4, 8, 9]}
    assert required(change, "old") == {"calculations/calc.py": [2, 3, 4, 8, 9]}
    # adjust's lines only have to run: ``return x * rate`` (3) never runs but for u000099
    path = tmp_path / "b" / "calculations" / "calc.py"
    assert change.new_run[path] == frozenset({2, 3, 4})


TABLE = """\
RATES = {"gold": 0.01, "plain": 0.0}


def calc(ctx):
    tier = "gold" if ctx.user.id == "u000099" else "plain"
    return {"bonus": ctx.user["portfolio"]["cash"] * RATES[tier]}
"""


class _User(dict):  # type: ignore[type-arg]
    def __init__(self, user_id: str) -> None:
        super().__init__(portfolio={"cash": 100.0})
        self.id = user_id


def test_a_changed_table_entry_must_be_read(tmp_path: Path) -> None:
    """Red team: ``RATES = {"gold": 0.01 -> 0.02, ...}`` read as ``RATES[tier]``, the tier
    ``"gold"`` only for u000099: the table's line ran at import, its reader for every user,
    and the change was skipped as cosmetic (100 users, ``replay_users = 10``) with that user's
    stale results. Each entry of a changed table must now be read in the coverage runs."""

    from btbuild.sim.changes import code_change

    new_text = TABLE.replace('"gold": 0.01', '"gold": 0.02')
    change = code_change(version(tmp_path / "a", TABLE), version(tmp_path / "b", new_text))
    path = tmp_path / "b" / "calculations" / "calc.py"
    assert 1 in change.new_direct[path]  # the table's line: its entries are probed
    probes, namespace, calc = _probed(change, path)

    assert calc("u1") == {"bonus": 0.0}
    gaps = probes.gaps(change.new_direct)
    assert [(key[2], outcome) for _, key, outcome in gaps] == [("entry", True)]
    assert gaps[0][1][:2] == (1, 9)  # the "gold" key
    assert calc("u000099") == {"bonus": 2.0}
    assert probes.gaps(change.new_direct) == []
    # iterating, copying or printing the table reads every entry; it stays a dict
    assert isinstance(namespace["RATES"], dict) and dict(namespace["RATES"]) == {  # type: ignore[call-overload]
        "gold": 0.02,
        "plain": 0.0,
    }


CLASSES = """\
class Base:
    RATE = 0.01

    def bonus(self, x):
        return x * self.RATE


class Gold(Base):
    RATE = 0.02

    def label(self):
        return "gold"


def calc(ctx):
    kind = Gold if ctx.user.id == "u000099" else Base
    return {"bonus": kind().bonus(ctx.user["portfolio"]["cash"])}
"""


def test_a_changed_class_attribute_must_be_read_from_its_class(tmp_path: Path) -> None:
    """Red team: ``Gold.RATE`` 0.02 -> 0.03, read as ``self.RATE`` in ``Base.bonus``, which
    every user runs (so the reader line "ran"), a ``Gold`` only for u000099: skipped as
    cosmetic with that user's stale results. The changed binding must now be read."""

    from btbuild.sim.changes import code_change

    new_text = CLASSES.replace("RATE = 0.02", "RATE = 0.03")
    change = code_change(version(tmp_path / "a", CLASSES), version(tmp_path / "b", new_text))
    path = tmp_path / "b" / "calculations" / "calc.py"
    assert 9 in change.new_direct[path]  # Gold.RATE's line: probed
    probes, namespace, calc = _probed(change, path)

    assert calc("u1") == {"bonus": 1.0}
    assert [key[:3] for _, key, _ in probes.gaps(change.new_direct)] == [(9, 4, "attr")]
    assert calc("u000099") == {"bonus": 100.0 * 0.03}
    assert probes.gaps(change.new_direct) == []
    gold = namespace["Gold"]
    assert gold().label() == "gold" and gold.RATE == 0.03  # type: ignore[attr-defined,operator]


DEFAULT = """\
RATE = 0.001


def fee(x, rate=RATE):
    return x * rate


def calc(ctx):
    cash = ctx.user["portfolio"]["cash"]
    if ctx.user.id == "u000099":
        charge = fee(cash)
    else:
        charge = fee(cash, 0.002)
    return {"worth": cash - charge}
"""


def test_a_changed_constant_read_by_a_default_argument_changes_the_function(
    tmp_path: Path,
) -> None:
    """Red team: ``RATE = 0.001`` -> ``0.003`` read only by ``def fee(x, rate=RATE)``, the
    default used only for u000099: no function statement read RATE, so nothing had to run
    and the change was skipped as cosmetic with that user's stale results. The def now
    counts as changed: its body, and every call of ``fee`` (line 11 too), must run."""
    from btbuild.sim.changes import code_change

    new_text = DEFAULT.replace("RATE = 0.001", "RATE = 0.003")
    change = code_change(version(tmp_path / "a", DEFAULT), version(tmp_path / "b", new_text))
    assert required(change, "new") == {"calculations/calc.py": [5, 11, 13, 14]}


DATACLASS = """\
from dataclasses import dataclass


@dataclass
class Fees:
    rate: float = 0.001


def calc(ctx):
    cash = ctx.user["portfolio"]["cash"]
    if ctx.user.id == "u000099":
        fees = Fees()
    else:
        fees = Fees(rate=0.002)
    return {"worth": cash - cash * fees.rate}
"""


def test_a_changed_dataclass_default_makes_its_constructions_changed(tmp_path: Path) -> None:
    """Red team: ``rate: float = 0.001`` -> ``0.003``, ``Fees()`` (the default) only for
    u000099: the reader ``fees.rate`` ran for every user, and the change was skipped as
    cosmetic with that user's stale results. Every statement naming the class must run."""
    from btbuild.sim.changes import code_change

    new_text = DATACLASS.replace("= 0.001", "= 0.003")
    change = code_change(version(tmp_path / "a", DATACLASS), version(tmp_path / "b", new_text))
    assert {12, 14, 15} <= set(required(change, "new")["calculations/calc.py"])


def test_a_table_in_a_function_is_probed_when_looked_up_by_a_computed_key(
    tmp_path: Path,
) -> None:
    """``rates = {...}`` in the function, read as ``rates[tier]``: probed like a module-level
    table; a dict display that is only an output record is not (its entries are read when
    the output is stored)."""
    from btbuild.sim.changes import code_change
    from btbuild.sim.probes import Probes

    local = TABLE.replace('RATES = {"gold": 0.01, "plain": 0.0}\n\n\n', "").replace(
        "def calc(ctx):\n", 'def calc(ctx):\n    rates = {"gold": 0.01, "plain": 0.0}\n'
    )
    local = local.replace("RATES[tier]", "rates[tier]")
    change = code_change(
        version(tmp_path / "a", local), version(tmp_path / "b", local.replace("0.01", "0.02"))
    )
    probes = Probes(change.new_direct)
    kinds = sorted(key[2] for (_, key) in probes.ids)
    assert kinds == ["entry", "entry"], kinds  # the table's two keys, not the output's


def test_a_changed_list_entry_must_be_read(tmp_path: Path) -> None:
    """Red team: ``RULES = [lambda x: 0.0, lambda x: x * 0.01]`` (the second edited) read as
    ``RULES[level]``, level 1 only for u000099: each element of a changed list display must
    be read (negative indexes and slices count; iterating reads all)."""

    from btbuild.sim.changes import code_change

    rules = TABLE.replace('RATES = {"gold": 0.01, "plain": 0.0}', "RULES = [0.0, 0.01]")
    rules = rules.replace('"gold" if', "1 if").replace('else "plain"', "else 0")
    rules = rules.replace("RATES[tier]", "RULES[tier]")
    change = code_change(
        version(tmp_path / "a", rules), version(tmp_path / "b", rules.replace("0.01", "0.02"))
    )
    path = tmp_path / "b" / "calculations" / "calc.py"
    probes, namespace, calc = _probed(change, path)

    assert calc("u1") == {"bonus": 0.0}
    assert [key[1:] for _, key, _ in probes.gaps(change.new_direct)] == [(14, "entry")]  # 0.02
    assert namespace["RULES"][-1:] == [0.02]  # type: ignore[index]  # a slice reads it
    assert probes.gaps(change.new_direct) == []


BASE_LAYER = """\
from enum import Enum


class Base:
    RATE = 0.01

    def bonus(self, x):
        return x * self.RATE


class Kind(Enum):
    GOLD = 1


class Meta(type):
    pass


class Model(metaclass=Meta):
    pass


class Derived(Model):
    pass
"""

IMPORTED = """\
from layers import helpers
from layers.helpers import Base

LOW = 0.02
HIGH = 0.03


class Gold(Base):
    RATE = LOW


class Silver(helpers.Base):
    RATE = LOW


def calc(ctx):
    kind = Gold if ctx.user.id == "u000099" else Base
    return {"bonus": kind().bonus(ctx.user["portfolio"]["cash"])}
"""


def test_a_class_attribute_over_an_imported_base_must_be_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Red team 24: ``Gold(Base)`` with ``Base`` imported from a layer, ``RATE = LOW`` ->
    ``RATE = HIGH`` (no constant changed), read as ``self.RATE`` in the layer's ``bonus``,
    a ``Gold`` only for u000099: the class-attribute rule covered bases of the same file
    only, and the change was skipped as cosmetic with that user's stale results."""
    from btbuild.sim.changes import code_change
    from btbuild.sim.probes import Probes, plain_classes

    new_text = IMPORTED.replace("    RATE = LOW\n\n\ndef", "    RATE = HIGH\n\n\ndef")
    new_text = new_text.replace(
        "class Gold(Base):\n    RATE = LOW", "class Gold(Base):\n    RATE = HIGH"
    )
    change = code_change(
        version(tmp_path / "a", IMPORTED, BASE_LAYER), version(tmp_path / "b", new_text, BASE_LAYER)
    )
    assert change.constants == ()  # only names changed: the class-attribute rule must see it
    assert plain_classes(change.new.files) == {"Base", "Gold", "Silver"}  # no Enum, metaclass
    path = tmp_path / "b" / "calculations" / "calc.py"
    assert set(change.new_direct[path]) >= {9, 13}
    probes = Probes(change.new_direct, plain_classes(change.new.files))
    assert sorted(key[:3] for (_, key) in probes.ids) == [(9, 4, "attr"), (13, 4, "attr")]
    monkeypatch.syspath_prepend(str(tmp_path / "b"))
    for name in [name for name in sys.modules if name.split(".")[0] == "layers"]:
        monkeypatch.delitem(sys.modules, name)  # another test's workspace's layers (restored)
    namespace: dict[str, object] = {}
    probes.prime(namespace)
    exec(probes.compile(path.read_bytes(), path), namespace)
    from types import SimpleNamespace

    def calc(user: str) -> object:
        return namespace["calc"](SimpleNamespace(user=_User(user)))  # type: ignore[operator]

    assert calc("u1") == {"bonus": 1.0}
    assert [key[:3] for _, key, _ in probes.gaps(change.new_direct)] == [
        (9, 4, "attr"),
        (13, 4, "attr"),
    ]
    assert calc("u000099") == {"bonus": 100.0 * 0.03}
    assert [key[:3] for _, key, _ in probes.gaps(change.new_direct)] == [(13, 4, "attr")]
