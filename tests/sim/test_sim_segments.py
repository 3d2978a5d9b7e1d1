"""The simulation runner shows a segment target only users of its segment."""

from __future__ import annotations

from btbuild.plugins.sources import MemorySource
from btbuild.sim.calls import is_failure
from btbuild.sim.runner import SimRunner
from btbuild.workspace.config import load_workspace

FILES = {
    "BUILD.toml": """
[workspace]
name = "t"

[segment.gold]
source = "portfolio"
field = "profile.tier"
values = ["gold", "platinum"]

[segment.even]
source = "portfolio"
predicate = "even_user"
""",
    "calculations/a/BUILD.toml": """
[calculation.tiers]
entry = "m:tiers"
roots = ["portfolio"]
users = "gold"

[calculation.evens]
entry = "m:evens"
roots = ["portfolio"]
users = "even"
""",
    "calculations/a/m.py": """
def tiers(ctx):
    tier = ctx.user["portfolio"]["profile"]["tier"]
    assert tier in ("gold", "platinum"), tier
    return tier

def evens(ctx):
    assert isinstance(ctx.user["portfolio"], int) and ctx.user["portfolio"] % 2 == 0
    return ctx.user["portfolio"]
""",
}


def _is_even(record):
    return isinstance(record, int) and not isinstance(record, bool) and record % 2 == 0


def test_field_segment_users_are_fabricated_inside_the_segment(make_workspace):
    workspace = load_workspace(make_workspace(FILES))
    runner = SimRunner(workspace, {"portfolio": MemorySource("portfolio", "user")})
    result = runner.simulate("tiers")
    outputs = [run.output for run in result.contexts if run.output is not None]
    assert outputs and not any(is_failure(output) for output in outputs)
    assert set(outputs) == {"gold", "platinum"}  # both accepted values are exercised


def test_predicate_segment_shows_only_accepted_draws(make_workspace):
    workspace = load_workspace(make_workspace(FILES))
    runner = SimRunner(
        workspace,
        {"portfolio": MemorySource("portfolio", "user")},
        predicates=lambda: {"even_user": _is_even},
    )
    result = runner.simulate("evens")
    outputs = [run.output for run in result.contexts if run.output is not None]
    assert not any(is_failure(output) for output in outputs)
    assert outputs and all(output % 2 == 0 for output in outputs)
