"""The streaming result-validator protocol returned by ``btbuild_result_validators``."""

from __future__ import annotations

from abc import ABC, abstractmethod


class ResultValidator(ABC):
    """Checks one cell's result before it is committed, one item at a time.

    The executor calls :meth:`observe` once per processed user of a ``per_user`` cell (``value``
    is what ``process`` returned, ``None`` included) or once with ``user_id=None`` for a
    ``per_date`` cell, then :meth:`finish`. A non-empty list of problems fails the cell.
    Validators must be cheap per item: they see every user of every cell.
    """

    #: True once :meth:`finish`'s answer can no longer change, whatever items follow: the
    #: executor may then stop calling :meth:`observe` (it looks at its writer flushes).
    settled: bool = False

    @abstractmethod
    def observe(self, user_id: str | None, value: object) -> None:
        """Look at one result item."""

    @abstractmethod
    def finish(self) -> list[str]:
        """One line per problem found (empty when the result looks fine)."""
