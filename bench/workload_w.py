"""Workload W of issue 14: the workspace (source plugin, 25 formulas) and the bare loop.

Users hold 5-20 positions (instrument of 200, units with 20% short, open price); one price
list per date (geometric random walk); 25 small calculations: 10 per_user over portfolio +
prices, 10 per_user each combining two of those, 5 per_date aggregating two of the second
layer over all users. Two layouts of the same formulas:

* ``shared``: every formula in one helper module ``formulas.py`` at the workspace root,
  imported by 25 thin calculation modules (``calc_<name>.py``: ``from formulas import f``);
* ``percalc``: one module per calculation, holding its formula.

Everything is generated from fixed seeds, identically in btbuild's source plugin and in the
bare loop (which imports the same plugin module and the same formulas).
"""

from __future__ import annotations

import importlib.util
import pickle
import sys
from datetime import date, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

START = date(2024, 1, 1)

SOURCE_PLUGIN = '''\
"""Workload W's root data: a user-scope portfolio and a date-scope price list."""

import math
import random
from datetime import date

import xxhash

from btbuild.plugins import RootSource, hookimpl

INSTRUMENTS = 200


def prices_on(seed, start, day):
    rng = random.Random(seed)
    prices = [rng.uniform(10.0, 200.0) for _ in range(INSTRUMENTS)]
    for _ in range((day - start).days):
        prices = [p * math.exp(rng.gauss(0.0, 0.02)) for p in prices]
    return {f"I{i:03d}": round(p, 4) for i, p in enumerate(prices)}


def positions_of(seed, index):
    rng = random.Random(seed * 1_000_003 + index)
    positions = []
    for _ in range(rng.randint(5, 20)):
        units = float(rng.randint(1, 500))
        if rng.random() < 0.2:
            units = -units
        positions.append(
            {"instrument": f"I{rng.randrange(INSTRUMENTS):03d}", "units": units,
             "open_price": round(rng.uniform(10.0, 200.0), 4)}
        )
    return {"positions": positions}


class Portfolio(RootSource):
    name = "portfolio"
    scope = "user"

    def __init__(self, seed, users, start):
        self.seed, self.count, self.start = seed, users, start

    def available(self, day):
        return day >= self.start

    def fingerprint(self, day):
        return xxhash.xxh3_128_hexdigest(f"portfolio:{self.seed}:{self.count}".encode())

    def users(self, day):
        for index in range(self.count):
            yield f"u{index:07d}", positions_of(self.seed, index)

    def strategy(self):
        from hypothesis import strategies as st

        position = st.fixed_dictionaries(
            {"instrument": st.sampled_from([f"I{i:03d}" for i in range(INSTRUMENTS)]),
             "units": st.floats(-500, 500), "open_price": st.floats(0.01, 500)}
        )
        return st.fixed_dictionaries({"positions": st.lists(position, max_size=20)})


class Prices(RootSource):
    name = "prices"
    scope = "date"

    def __init__(self, seed, start):
        self.seed, self.start = seed, start

    def available(self, day):
        return day >= self.start

    def fingerprint(self, day):
        return xxhash.xxh3_128_hexdigest(f"prices:{self.seed}:{day.isoformat()}".encode())

    def load(self, day):
        return prices_on(self.seed, self.start, day)

    def strategy(self):
        from hypothesis import strategies as st

        return st.fixed_dictionaries(
            {f"I{i:03d}": st.floats(0.01, 500) for i in range(INSTRUMENTS)}
        )


@hookimpl
def btbuild_root_sources(config):
    settings = config.settings_for("wsource")
    start = date.fromisoformat(settings["start"])
    return [Portfolio(settings["seed"], settings["users"], start), Prices(settings["seed"], start)]
'''

ROOT_BUILD = """\
[workspace]
name = "w"
plugins = ["plugins.wsource"]
start_date = "{start}"

[execution]
flush_every = 5000

[plugin.wsource]
users = {users}
seed = 11
start = "{start}"
"""

# name -> (kind, deps, body). Bodies are the formulas' code after their ``def`` line.
LAYER1 = {
    "market_value": "    return round(sum(_pos_value(p, ctx.root('prices')) for p in ctx.user['portfolio']['positions']), 2)\n",
    "cost_basis": "    return round(sum(p['units'] * p['open_price'] for p in ctx.user['portfolio']['positions']), 2)\n",
    "unrealised_pnl": "    prices = ctx.root('prices')\n    return round(sum(p['units'] * (prices[p['instrument']] - p['open_price']) for p in ctx.user['portfolio']['positions']), 2)\n",
    "gross_exposure": "    prices = ctx.root('prices')\n    return round(sum(abs(p['units']) * prices[p['instrument']] for p in ctx.user['portfolio']['positions']), 2)\n",
    "long_exposure": "    prices = ctx.root('prices')\n    return round(sum(p['units'] * prices[p['instrument']] for p in ctx.user['portfolio']['positions'] if p['units'] > 0), 2)\n",
    "short_exposure": "    prices = ctx.root('prices')\n    return round(-sum(p['units'] * prices[p['instrument']] for p in ctx.user['portfolio']['positions'] if p['units'] < 0), 2)\n",
    "concentration": "    prices = ctx.root('prices')\n    values = [abs(p['units']) * prices[p['instrument']] for p in ctx.user['portfolio']['positions']]\n    total = sum(values)\n    return round(max(values) / total, 6) if total else 0.0\n",
    "hhi": "    prices = ctx.root('prices')\n    values = [abs(p['units']) * prices[p['instrument']] for p in ctx.user['portfolio']['positions']]\n    total = sum(values)\n    return round(sum((v / total) ** 2 for v in values), 6) if total else 0.0\n",
    "winners": "    prices = ctx.root('prices')\n    return sum(1 for p in ctx.user['portfolio']['positions'] if p['units'] * (prices[p['instrument']] - p['open_price']) > 0)\n",
    "return_pct": "    prices = ctx.root('prices')\n    cost = sum(abs(p['units']) * p['open_price'] for p in ctx.user['portfolio']['positions'])\n    pnl = sum(p['units'] * (prices[p['instrument']] - p['open_price']) for p in ctx.user['portfolio']['positions'])\n    return round(100.0 * pnl / cost, 4) if cost else 0.0\n",
}

LAYER2 = {  # name -> ((dep a, dep b), expression of a and b)
    "pnl_margin": (("unrealised_pnl", "cost_basis"), "a / b if b else 0.0"),
    "net_exposure": (("long_exposure", "short_exposure"), "a - b"),
    "leverage": (("gross_exposure", "market_value"), "a / abs(b) if b else 0.0"),
    "risk_score": (("hhi", "concentration"), "a * b"),
    "win_return": (("winners", "return_pct"), "a * b"),
    "value_gap": (("market_value", "cost_basis"), "a - b"),
    "short_ratio": (("short_exposure", "gross_exposure"), "a / b if b else 0.0"),
    "pnl_per_winner": (("unrealised_pnl", "winners"), "a / max(b, 1)"),
    "conc_return": (("concentration", "return_pct"), "a * b"),
    "long_hhi": (("long_exposure", "hhi"), "a * b"),
}

LAYER3 = {  # name -> ((dep a, dep b), aggregation helper)
    "mean_stats": (("pnl_margin", "net_exposure"), "_mean"),
    "leverage_pct": (("leverage", "risk_score"), "_percentiles"),
    "top_bottom": (("win_return", "value_gap"), "_top_bottom"),
    "short_summary": (("short_ratio", "pnl_per_winner"), "_mean"),
    "conc_pct": (("conc_return", "long_hhi"), "_percentiles"),
}

HELPERS = {
    "_pos_value": "def _pos_value(p, prices):\n    return p['units'] * prices[p['instrument']]\n",
    "_mean": "def _mean(values):\n    values = list(values)\n    return round(sum(values) / len(values), 6) if values else 0.0\n",
    "_percentiles": (
        "def _percentiles(values):\n    ordered = sorted(values)\n    if not ordered:\n        return []\n"
        "    return [ordered[min(len(ordered) - 1, int(q * len(ordered)))] for q in (0.05, 0.25, 0.5, 0.75, 0.95)]\n"
    ),
    "_top_bottom": (
        "def _top_bottom(values):\n    ordered = sorted(values)\n    return {'bottom': ordered[:10], 'top': ordered[-10:]}\n"
    ),
}
HELPER_USERS = {"_pos_value": ["market_value"]}  # every other helper serves layer 3
NAMES = [*LAYER1, *LAYER2, *LAYER3]


def deps_of(name: str) -> tuple[str, ...]:
    if name in LAYER2:
        return LAYER2[name][0]
    if name in LAYER3:
        return LAYER3[name][0]
    return ()


def kind_of(name: str) -> str:
    return "per_date" if name in LAYER3 else "per_user"


def formula(name: str) -> str:
    """The source of one formula ``name(ctx)``."""
    if name in LAYER1:
        return f"def {name}(ctx):\n{LAYER1[name]}"
    if name in LAYER2:
        (a, b), expr = LAYER2[name]
        return (
            f"def {name}(ctx):\n    a = ctx.dep('{a}')\n    b = ctx.dep('{b}')\n"
            f"    if a is None or b is None:\n        return None\n    return round({expr}, 6)\n"
        )
    (a, b), helper = LAYER3[name]
    return (
        f"def {name}(ctx):\n    a = ctx.dep('{a}')\n    b = ctx.dep('{b}')\n"
        f"    return {{'{a}': {helper}(a.values()), '{b}': {helper}(b.values())}}\n"
    )


def helpers_for(name: str) -> list[str]:
    if name in LAYER1:
        return [h for h, users in HELPER_USERS.items() if name in users]
    if name in LAYER3:
        return [LAYER3[name][1]]
    return []


def shared_module() -> str:
    parts = ['"""All 25 formulas of workload W."""\n']
    parts += [HELPERS[h] for h in HELPERS]
    parts += [formula(name) for name in NAMES]
    return "\n\n".join(parts)


def calc_module(name: str, layout: str) -> str:
    if layout == "shared":
        return f"from formulas import {name}\n\n\ndef run(ctx):\n    return {name}(ctx)\n"
    parts = [HELPERS[h] for h in helpers_for(name)] + [formula(name)]
    return "\n\n".join(parts) + f"\n\ndef run(ctx):\n    return {name}(ctx)\n"


def calc_build() -> str:
    tables = []
    for name in NAMES:
        lines = [f"[calculation.{name}]", f'entry = "calc_{name}:run"', f'kind = "{kind_of(name)}"']
        if kind_of(name) == "per_date":  # flat memory: per_user deps read shard by shard
            lines.append("stream_deps = true")
        if name in LAYER1:
            lines.append('roots = ["portfolio", "prices"]')
        else:
            lines.append("deps = [" + ", ".join(f'":{d}"' for d in deps_of(name)) + "]")
        if name in ("winners",) or name in LAYER2:
            lines.append("checks = { flatline = false, null_density = false }")
        tables.append("\n".join(lines))
    return "\n\n".join(tables) + "\n"


def write_workspace(root: Path, users: int, layout: str) -> Path:
    (root / "plugins").mkdir(parents=True, exist_ok=True)
    (root / "calculations" / "w").mkdir(parents=True, exist_ok=True)
    (root / "BUILD.toml").write_text(ROOT_BUILD.format(users=users, start=START.isoformat()))
    (root / "plugins" / "wsource.py").write_text(SOURCE_PLUGIN)
    (root / "calculations" / "w" / "BUILD.toml").write_text(calc_build())
    if layout == "shared":
        (root / "formulas.py").write_text(shared_module())
    for name in NAMES:
        (root / "calculations" / "w" / f"calc_{name}.py").write_text(calc_module(name, layout))
    return root


def formula_file(root: Path, name: str, layout: str) -> Path:
    """The file holding formula ``name`` in ``layout``."""
    if layout == "shared":
        return root / "formulas.py"
    return root / "calculations" / "w" / f"calc_{name}.py"


# --------------------------------------------------------------------------- edits

EDITS: dict[str, tuple[str, str, str, bool]] = {
    # scenario -> (formula edited, old text, new text, changes behaviour)
    "leaf change": (
        "mean_stats",
        "return {'pnl_margin': _mean(a.values()), 'net_exposure': _mean(b.values())}",
        "return {'pnl_margin': _mean(a.values()), 'net_exposure': _mean(b.values()), 'n': len(a)}",
        True,
    ),
    "root change": (
        "market_value",
        "return round(sum(_pos_value(p, ctx.root('prices'))",
        "return round(1.5 * sum(_pos_value(p, ctx.root('prices'))",
        True,
    ),
    "comment": (
        "cost_basis",
        "def cost_basis(ctx):\n",
        "def cost_basis(ctx):\n    # the money put in: units at their opening price\n",
        False,
    ),
    "rename": (  # a local variable renamed: the normalizer's job, nothing may re-run
        "hhi",
        "    values = [abs(p['units']) * prices[p['instrument']] for p in ctx.user['portfolio']['positions']]\n    total = sum(values)\n    return round(sum((v / total) ** 2 for v in values), 6) if total else 0.0\n",
        "    weights = [abs(p['units']) * prices[p['instrument']] for p in ctx.user['portfolio']['positions']]\n    total = sum(weights)\n    return round(sum((v / total) ** 2 for v in weights), 6) if total else 0.0\n",
        False,
    ),
}


def apply_edit(root: Path, layout: str, scenario: str) -> str:
    name, old, new, _ = EDITS[scenario]
    path = formula_file(root, name, layout)
    text = path.read_text()
    if text.count(old) != 1:
        raise SystemExit(f"edit {scenario!r}: pattern not found once in {path}")
    path.write_text(text.replace(old, new))
    return name


def downstream(name: str) -> list[str]:
    """``name`` and every target that (transitively) depends on it."""
    found = [name]
    for other in NAMES:
        if any(dep in found for dep in deps_of(other)) and other not in found:
            found.append(other)
    return found


# --------------------------------------------------------------------------- bare loop


def load_module(path: Path, name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class _User:
    __slots__ = ("id", "portfolio")

    def __getitem__(self, source: str) -> Any:
        return self.portfolio


class _Ctx:
    __slots__ = ("date", "prices", "user", "deps")

    def root(self, source: str, days_ago: int = 0) -> Any:
        return self.prices

    def dep(self, name: str) -> Any:
        return self.deps[name]


def bare_loop(
    root: Path, days: list[date], users: int, out: Path | None = None, tag: str = "0"
) -> dict[tuple[str, date], Any]:
    """Every formula over every user and date, in memory, no persistence; with ``out``,
    each cell's values are pickled there (what a bare script reloads on a no-op).
    Returns a digest of every cell's value (for the minimum of a change)."""
    plugin = load_module(root / "plugins" / "wsource.py", f"w_plugin_{tag}")
    formulas = load_module(root / "formulas.py", f"w_formulas_{tag}")
    functions = [(name, getattr(formulas, name)) for name in NAMES]
    layer12 = [(n, f) for n, f in functions if n not in LAYER3]
    layer3 = [(n, f) for n, f in functions if n in LAYER3]
    portfolio, prices = plugin.Portfolio(11, users, START), plugin.Prices(11, START)
    digests: dict[tuple[str, date], Any] = {}
    for day in days:
        ctx = _Ctx()
        ctx.date, ctx.prices = day, prices.load(day)
        results: dict[str, dict[str, Any]] = {name: {} for name, _ in functions}
        for user_id, record in portfolio.users(day):
            user = _User()
            user.id, user.portfolio = user_id, record
            ctx.user = user
            values: dict[str, Any] = {}
            ctx.deps = values
            for name, function in layer12:
                value = function(ctx)
                values[name] = value
                if value is not None:
                    results[name][user_id] = value
        ctx.user, ctx.deps = None, results
        for name, function in layer3:
            results[name] = function(ctx)
        for name, value in results.items():
            digests[(name, day)] = hash(pickle.dumps(value, protocol=5))
            if out is not None:
                (out / f"{name}@{day.isoformat()}.pkl").write_bytes(pickle.dumps(value, protocol=5))
    return digests


def bare_reload(out: Path) -> int:
    count = 0
    for path in sorted(out.iterdir()):
        count += len(pickle.loads(path.read_bytes()) or ())
    return count


def minimum_units(
    edited: str, before: dict[tuple[str, date], Any], after: dict[tuple[str, date], Any]
) -> int:
    """Cells that must run: the edited formula's (its code changed behaviour) and every cell
    one of whose deps' values changed on that date (early cutoff stops the rest)."""
    changed = {key for key in after if before.get(key) != after[key]}
    count = 0
    for name, day in after:
        if name == edited or any((dep, day) in changed for dep in deps_of(name)):
            count += 1
    return count


def days_of(count: int) -> list[date]:
    return [START + timedelta(days=offset) for offset in range(count)]


def add_to_path(root: Path) -> None:
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
