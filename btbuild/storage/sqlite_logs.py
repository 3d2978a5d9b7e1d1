"""The SQLite backend's run log, SimHash registry, equivalence ledger and the listing of the
parts of sharded cells (a mixin of :class:`~btbuild.storage.sqlite.SqliteBackend`: plain
tables, no commit protocol)."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Sequence
from contextlib import AbstractContextManager
from typing import Any

from btbuild.storage.outbox import PendingAlert
from btbuild.storage.records import Equivalence, RunRecord


class SqliteLogs:
    """Needs the backend's ``_transaction``, ``_query`` and ``read_only``."""

    read_only: bool

    def _transaction(self, what: str) -> AbstractContextManager[sqlite3.Connection]:
        raise NotImplementedError

    def _query(self, what: str, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        raise NotImplementedError

    # ------------------------------------------------------------------ parts

    def part_cells(self, targets: Iterable[str]) -> list[tuple[str, str]]:
        """``Backend.part_cells`` from the records and the shards: a range of the primary key
        per target (``name~`` up to ``name`` + DEL, the character after ``~``)."""
        found: set[tuple[str, str]] = set()
        for target in targets:
            for table in ("cells", "shards"):
                found.update(
                    self._query(
                        f"list the parts of {target}",
                        f"SELECT DISTINCT target, date FROM {table} WHERE target >= ? AND target < ?",
                        [f"{target}~", f"{target}\x7f"],
                    )
                )
        return sorted(found)

    # ------------------------------------------------------------------ run log, SimHash

    def append_run(self, run: RunRecord) -> None:
        with self._transaction(f"log run {run.run_id}") as conn:
            conn.execute(
                "INSERT OR REPLACE INTO runs (run_id, target, date, started, data) VALUES (?, ?, ?, ?, ?)",
                [
                    run.run_id,
                    run.target,
                    run.date,
                    run.started,
                    json.dumps(run.to_dict(), sort_keys=True),
                ],
            )

    def runs(self, target: str | None = None, limit: int = 100) -> list[RunRecord]:
        return self.find_runs(target=target, limit=limit)

    def find_runs(
        self,
        *,
        target: str | None = None,
        date: str | None = None,
        since: str | None = None,
        run_id: str | None = None,
        limit: int = 100,
    ) -> list[RunRecord]:
        clauses: list[str] = []
        params: list[Any] = []
        for clause, value in (("target = ?", target), ("date = ?", date), ("date >= ?", since)):
            if value is not None:
                clauses.append(clause)
                params.append(value)
        if run_id is not None:  # a record's id is "<build run id>/<attempt generation>"
            escaped = run_id.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            clauses.append("(run_id = ? OR run_id LIKE ? ESCAPE '\\')")
            params += [run_id, escaped + "/%"]
        where = ("WHERE " + " AND ".join(clauses)) if clauses else ""
        rows = self._query(
            "read the run log",
            f"SELECT data FROM runs {where} ORDER BY started DESC, rowid DESC LIMIT ?",
            [*params, limit],
        )
        found = []
        for (data,) in rows:
            try:
                found.append(RunRecord.from_dict(json.loads(data)))
            except (ValueError, TypeError):
                continue  # corrupt entry: skipped
        return found

    def get_sim_hash(self, code_hash: str, fabricator_version: str) -> str | None:
        rows = self._query(
            "read the SimHash registry",
            "SELECT sim_hash FROM sim_hashes WHERE code_hash = ? AND fabricator_version = ?",
            [code_hash, fabricator_version],
        )
        return rows[0][0] if rows and isinstance(rows[0][0], str) else None

    def put_sim_hash(self, code_hash: str, fabricator_version: str, sim_hash: str) -> None:
        with self._transaction("write the SimHash registry") as conn:
            conn.execute(
                "INSERT OR REPLACE INTO sim_hashes (code_hash, fabricator_version, sim_hash) VALUES (?, ?, ?)",
                [code_hash, fabricator_version, sim_hash],
            )

    def _add_equivalence(self, entry: Equivalence) -> None:
        with self._transaction("write the equivalence ledger") as conn:
            conn.execute(
                "INSERT INTO equivalences (target, old_code_hash, new_code_hash, sim_hash, date, recorded_at)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                [
                    entry.target,
                    entry.old_code_hash,
                    entry.new_code_hash,
                    entry.sim_hash,
                    entry.date,
                    entry.recorded_at,
                ],
            )

    def equivalences(self, target: str | None = None) -> list[Equivalence]:
        where, params = ("WHERE target = ?", [target]) if target is not None else ("", [])
        rows = self._query(
            "read the equivalence ledger",
            "SELECT target, old_code_hash, new_code_hash, sim_hash, date, recorded_at"
            f" FROM equivalences {where} ORDER BY id",
            params,
        )
        return [Equivalence(*row) for row in rows]

    # ------------------------------------------------------------------ alert outbox

    def pending_alerts(self) -> dict[str, PendingAlert | None]:
        if self.read_only:  # nothing can be committed, published or deleted here
            return {}
        rows = self._query("read the alert outbox", "SELECT id, data FROM alert_outbox")
        return {key: PendingAlert.from_json(data) for key, data in rows}

    def _delete_alert(self, key: str) -> None:
        with self._transaction("delete a published alert") as conn:
            conn.execute("DELETE FROM alert_outbox WHERE id = ?", [key])
