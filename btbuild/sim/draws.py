"""One deterministic example of a Hypothesis strategy for a seed (the fabricator's draws).

Hypothesis' default provider also draws "local constants" harvested from imported modules
(the worlds would depend on the code under test), so draws go through a provider that uses
only Hypothesis' fixed global constants.
"""

from __future__ import annotations

import random
from typing import Any


def _provider() -> type:
    from hypothesis.internal.conjecture.choice import choice_constraints_key, choice_permitted
    from hypothesis.internal.conjecture.providers import GLOBAL_CONSTANTS, HypothesisProvider

    pools: dict[Any, tuple[Any, ...]] = {}

    class _FabricatorProvider(HypothesisProvider):
        """Hypothesis' provider without the local-constant pool (see the module docstring)."""

        def _maybe_draw_constant(
            self, choice_type: Any, constraints: Any, *, p: float = 0.05
        ) -> Any:
            rng = self._random
            assert rng is not None  # always set: ConjectureData is given a Random
            if rng.random() > p:
                return None
            key = (choice_type, choice_constraints_key(choice_type, constraints))
            pool = pools.get(key)
            if pool is None:
                pool = pools[key] = tuple(
                    choice
                    for choice in GLOBAL_CONSTANTS.set_for_type(choice_type)
                    if choice_permitted(choice, constraints)
                )
            return rng.choice(pool) if pool else None

    return _FabricatorProvider


_PROVIDER: list[type] = []


def draw(strategy: Any, seed: int) -> Any:
    """One deterministic example of a Hypothesis ``strategy`` for ``seed``."""
    from hypothesis.control import BuildContext
    from hypothesis.internal.conjecture.data import ConjectureData

    if not _PROVIDER:
        _PROVIDER.append(_provider())
    data = ConjectureData(random=random.Random(seed), provider=_PROVIDER[0])
    with BuildContext(data, is_final=True, wrapped_test=draw):
        return data.draw(strategy)


__all__ = ["draw"]
