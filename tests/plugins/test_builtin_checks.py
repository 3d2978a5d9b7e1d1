from __future__ import annotations

from pathlib import Path

import pytest

from btbuild.errors import ConfigError
from btbuild.plugins import load_plugins


@pytest.fixture(scope="module")
def plugins(tmp_path_factory):
    return load_plugins(tmp_path_factory.mktemp("ws"), [], {}, entry_points=False)


def run(plugins, values, overrides=(), kind="per_user"):
    validators = plugins.validators("net_profit", kind, overrides)
    for i, value in enumerate(values):
        for v in validators:
            if not v.settled:  # the executor may stop observing a settled check
                v.observe(f"u{i:06d}" if kind == "per_user" else None, value)
    return [problem for v in validators for problem in v.finish()]


def test_flatline_needs_fifty_identical_values(plugins):
    assert run(plugins, [{"a": 1}] * 49) == []
    problems = run(plugins, [{"a": 1, "b": [2]}] * 50)
    assert (
        len(problems) == 1 and "'net_profit': flatline: all 50 values are identical" in problems[0]
    )
    assert run(plugins, [{"a": 1}] * 60 + [{"a": 2}]) == []
    assert run(plugins, [{"b": 1, "a": 2}] * 30 + [{"a": 2, "b": 1}] * 30) != []  # canonical JSON


def test_a_varied_flatline_check_is_settled(plugins):
    flatline, density = plugins.validators("net_profit", "per_user", ())
    for i in range(60):
        flatline.observe(f"u{i}", 1)
    assert not flatline.settled and flatline.finish() != []
    flatline.observe("u60", 2)
    assert flatline.settled and flatline.finish() == []
    assert not density.settled  # every None counts


def test_flatline_override(plugins):
    assert run(plugins, [7] * 100, {"flatline": False}) == []
    assert run(plugins, [7] * 10, {"min_items": 5}) != []


def test_null_density(plugins):
    assert run(plugins, [None] * 10 + list(range(10))) == []  # exactly 50%
    problems = run(plugins, [None] * 11 + list(range(9)))
    assert len(problems) == 1 and "null density 55% (11 of 20 values are None)" in problems[0]
    assert run(plugins, [None] * 11 + list(range(8))) == []  # fewer than 20 items
    assert run(plugins, [None] * 80 + list(range(20)), {"null_density": 0.9}) == []
    assert run(plugins, [None] * 95 + list(range(5)), {"null_density": 0.9}) != []
    assert run(plugins, [None] * 95 + list(range(5)), {"null_density": False}) == []
    assert run(plugins, [None, 1, None], {"min_items": 3}) != []


def test_per_date_results_are_observed_once(plugins):
    assert run(plugins, [{"total": 1}], kind="per_date") == []


def test_unknown_override_names_the_target(plugins):
    with pytest.raises(
        ConfigError,
        match=r"calculations/a/BUILD.toml: target 'net_profit': unknown checks key 'flatlne' \(known: flatline, min_items, null_density\)",
    ):
        plugins.validators(
            "net_profit",
            "per_user",
            {"flatlne": False},
            build_file=Path("calculations/a/BUILD.toml"),
        )


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"null_density": 1.5}, "checks.null_density = 1.5 is invalid"),
        ({"null_density": True}, "checks.null_density = True is invalid"),
        ({"flatline": "no"}, "checks.flatline = 'no' is invalid"),
        ({"min_items": 0}, "checks.min_items = 0 is invalid"),
    ],
)
def test_bad_override_values(plugins, overrides, message):
    with pytest.raises(ConfigError, match=f"target 'net_profit': {message}"):
        plugins.validators("net_profit", "per_user", overrides)


def test_overrides_accept_target_checks_pairs(plugins):
    assert run(plugins, [1] * 60, (("flatline", False),)) == []


def test_plugin_validators_are_collected(tmp_path):
    (tmp_path / "plugins").mkdir()
    (tmp_path / "plugins/positive.py").write_text(
        "from btbuild.plugins import ResultValidator\n"
        "class Positive(ResultValidator):\n"
        "    def __init__(self): self.bad = []\n"
        "    def observe(self, user_id, value):\n"
        "        if isinstance(value, (int, float)) and value < 0: self.bad.append(user_id)\n"
        "    def finish(self): return [f'negative for {self.bad}'] if self.bad else []\n"
        "def btbuild_check_options(): return {'positive': 'values must be >= 0'}\n"
        "def btbuild_result_validators(overrides):\n"
        "    return [Positive()] if overrides.get('positive', True) else []\n"
    )
    plugins = load_plugins(tmp_path, ["plugins.positive"], {}, entry_points=False)
    assert run(plugins, [1, -1, 2]) == ["negative for ['u000001']"]
    assert run(plugins, [1, -1, 2], {"positive": False}) == []
