"""End-to-end builds in temporary workspaces: every cell state and reason of DESIGN.md §5."""

from __future__ import annotations

from datetime import date

from tests.execution.conftest import USERS, write_day

V, T, S, L = "//pricing:value", "//pricing:total", "//pricing:sign", "//pricing:price_level"


def statuses(ws, report, *labels):
    cells = ws.cells(report)
    return {key: value for key, value in cells.items() if not labels or key[0] in labels}


def test_first_build_runs_everything_then_nothing(ws):
    first = ws.build()
    assert set(first) == {"cells", "summary"}
    assert first["summary"] == {
        "ran": 12,
        "skipped": 0,
        "blocked": 0,
        "impossible": 0,
        "failed": 0,
        "dead_letter": 0,
    }
    assert first["cells"][0] == {"label": L, "date": "2024-01-01", "status": "ran", "reason": "new"}
    assert all(c["reason"] == "new" for c in first["cells"])
    second = ws.build()
    assert second["summary"]["ran"] == 0 and second["summary"]["skipped"] == 12
    assert {c["reason"] for c in second["cells"]} == {"up_to_date"}


def test_comment_and_formatting_edits_run_nothing(ws):
    ws.build()
    ws.write(
        "calculations/pricing/calcs.py",
        "# a comment\n"
        + ws.root.joinpath("calculations/pricing/calcs.py")
        .read_text()
        .replace("def value(ctx):", 'def value(ctx):\n    """Docstring."""\n')
        + "\n\n",
    )
    report = ws.build()
    assert report["summary"]["ran"] == 0


def test_code_change_with_same_output_is_cut_off_early(ws):
    ws.build()
    # a real behaviour change (rounding to cents) that happens to give the same totals on
    # this data (whole numbers): total re-runs, its result hash is unchanged, sign is cut off
    ws.edit(
        "calculations/pricing/totals.py",
        "round(sum(values.values()), 6)",
        "round(sum(values.values()), 2)",
    )
    cells = ws.cells(ws.build())
    assert cells[(T, "2024-01-02")] == ("ran", "code_changed")
    assert cells[(S, "2024-01-02")] == ("skipped", "early_cutoff")
    assert cells[(V, "2024-01-02")] == ("skipped", "up_to_date")


def test_code_change_with_new_output_reruns_dependents(ws):
    ws.build()
    ws.edit("calculations/pricing/calcs.py", "return sum(", "return 2 * sum(")
    cells = ws.cells(ws.build())
    assert cells[(V, "2024-01-01")] == ("ran", "code_changed")
    assert cells[(T, "2024-01-01")] == ("ran", "deps_changed")
    assert cells[(S, "2024-01-01")] == ("ran", "deps_changed")
    assert cells[(L, "2024-01-01")] == ("skipped", "up_to_date")


def test_new_root_data_for_one_date_reruns_only_that_date(ws):
    ws.build()
    write_day(ws.root, date(2024, 1, 2), price_bump=1.0)
    cells = ws.cells(ws.build())
    ran = sorted(key for key, (status, _) in cells.items() if status == "ran")
    assert ran == [(L, "2024-01-02"), (S, "2024-01-02"), (T, "2024-01-02"), (V, "2024-01-02")]
    assert cells[(V, "2024-01-02")] == ("ran", "roots_changed")
    assert cells[(T, "2024-01-02")] == ("ran", "deps_changed")


def test_epoch_force_and_dry_run(ws):
    ws.build()
    ws.edit("BUILD.toml", 'name = "t"', 'name = "t"\nepoch = 2')
    dry = ws.build("//pricing:price_level", "--dry-run")
    assert dry["summary"]["runnable"] == 3 and dry["cells"][0]["status"] == "runnable"
    assert {c["reason"] for c in dry["cells"]} == {"epoch_changed"}
    assert ws.build("//pricing:price_level")["summary"]["ran"] == 3  # dry run wrote nothing
    forced = ws.build("//pricing:price_level", "--force")
    assert {(c["status"], c["reason"]) for c in forced["cells"]} == {("ran", "forced")}


def test_schedule_no_data_and_upstream(ws):
    ws.edit(
        "calculations/pricing/BUILD.toml",
        'entry = "levels:level"',
        'entry = "levels:level"\nschedule = { weekdays = [0, 2] }',
    )
    (ws.root / "data/portfolio/2024-01-02.jsonl").unlink()
    cells = ws.cells(ws.build(expect=0))
    # 2024-01-01 is a Monday
    assert cells[(L, "2024-01-02")] == ("skipped", "not_scheduled")
    assert cells[(L, "2024-01-03")] == ("ran", "new")
    assert cells[(V, "2024-01-02")] == ("impossible", "no_data")
    assert cells[(T, "2024-01-02")] == ("impossible", "upstream")
    assert cells[(S, "2024-01-02")] == ("impossible", "upstream")
    assert cells[(V, "2024-01-03")] == ("ran", "new")  # other dates keep running


def test_circuit_breaker_keeps_previous_result(ws):
    ws.build()
    before = ws.backend().read_result("value", "2024-01-02")
    ws.edit(
        "calculations/pricing/calcs.py",
        "    prices = ctx.root",
        "    if int(ctx.user.id[1:]) % 5 == 0:\n        raise ValueError('bad user')\n    prices = ctx.root",
    )
    code, out, err = ws.cli("build", "//pricing:value", "--date", "2024-01-02", "--format", "json")
    assert code == 1
    import json

    cells = ws.cells(json.loads(out))
    assert cells[(V, "2024-01-02")] == ("failed", "code_changed")
    detail = json.loads(out)["cells"][1]["detail"]
    # min_items = 10: the breaker trips as soon as 10 users were processed
    assert "circuit breaker: 2 of 10 users failed (20.0% > max_failure_rate 10.0%)" in detail
    assert "user u005: ValueError: bad user" in detail
    assert ws.backend().read_result("value", "2024-01-02") == before
    # next build retries, then dead-letters after max_attempts = 2
    again = ws.cells(ws.build("//pricing:value", date="2024-01-02", expect=1))
    assert again[(V, "2024-01-02")][0] == "dead_letter"
    third = ws.cells(ws.build("//pricing:value", date="2024-01-02", expect=1))
    assert third[(V, "2024-01-02")] == ("dead_letter", "max_attempts")


def test_failed_dep_blocks_dependents_but_not_other_branches(ws):
    ws.edit(
        "calculations/pricing/totals.py",
        "    values = ctx.dep",
        "    raise RuntimeError('boom')\n    values = ctx.dep",
    )
    code, out, err = ws.cli("build", "//...", "--date", "2024-01-01", "--format", "json")
    import json

    cells = ws.cells(json.loads(out))
    assert code == 1
    assert cells[(T, "2024-01-01")] == ("failed", "new")
    assert cells[(S, "2024-01-01")] == ("blocked", "waiting_for_deps")
    assert cells[(L, "2024-01-01")] == ("ran", "new")
    # fixing the code retries it
    ws.edit("calculations/pricing/totals.py", "    raise RuntimeError('boom')\n", "")
    fixed = ws.cells(ws.build(date="2024-01-01"))
    assert fixed[(T, "2024-01-01")] == ("ran", "retry")
    assert fixed[(S, "2024-01-01")] == ("ran", "new")


def test_bad_return_values_are_clear_per_user_errors(ws):
    ws.edit(
        "calculations/pricing/calcs.py",
        "    return sum(",
        "    return float('nan') if ctx.user.id == 'u002' else {1, 2} if ctx.user.id == 'u003' else sum(",
    )
    ws.edit("BUILD.toml", "max_failure_rate = 0.1", "max_failure_rate = 0.5")
    report = ws.build("//pricing:value", date="2024-01-01")
    assert report["cells"][0]["status"] == "ran"
    assert "2 of 30 users failed" in report["cells"][0]["detail"]
    assert "user u002" in report["cells"][0]["detail"] and "NaN" in report["cells"][0]["detail"]
    stored = ws.backend().read_result("value", "2024-01-01")
    assert "u002" not in stored and "u003" not in stored and len(stored) == len(USERS) - 2


def test_historical_targets_chain_and_block_on_a_missing_previous_day(ws):
    ws.write(
        "calculations/hist/BUILD.toml",
        '[calculation.running]\nentry = "h:running"\nkind = "per_date"\ndeps = ["//pricing:total"]\nhistorical = true\n',
    )
    ws.write(
        "calculations/hist/h.py",
        "def running(ctx):\n    prev = ctx.previous or 0\n    return round(prev + ctx.dep('total')['total'], 6)\n",
    )
    ws.build("//hist:running", date="2024-01-03")
    backend = ws.backend()
    day1, day2 = (
        backend.read_result("running", "2024-01-01"),
        backend.read_result("running", "2024-01-02"),
    )
    total2 = backend.read_result("total", "2024-01-02")["total"]
    assert day2 == round(day1 + total2, 6)
    # make day 4 fail: day 5 is blocked waiting for it
    ws.edit(
        "calculations/hist/h.py",
        "    prev =",
        "    if ctx.date.day == 4:\n        raise ValueError('x')\n    prev =",
    )
    cells = ws.cells(ws.build("//hist:running", date="2024-01-05", expect=1))
    assert cells[("//hist:running", "2024-01-04")][0] == "failed"
    assert cells[("//hist:running", "2024-01-05")] == ("blocked", "waiting_for_previous_day")


def test_category_migration_rebuilds_under_the_new_package_and_deletes_the_old(ws):
    ws.build(date="2024-01-01")
    ws.build(date="2024-01-02")
    ws.edit(
        "calculations/pricing/BUILD.toml",
        '[calculation.price_level]\nentry = "levels:level"\nkind = "per_date"\nroots = ["prices"]\n',
        "",
    )
    ws.write(
        "calculations/market/BUILD.toml",
        '[calculation.price_level]\nentry = "levels:level"\nkind = "per_date"\nroots = ["prices"]\n',
    )
    ws.write(
        "calculations/market/levels.py", (ws.root / "calculations/pricing/levels.py").read_text()
    )
    dry = ws.cells(ws.build("--dry-run", date="2024-01-02"))
    assert dry[("//market:price_level", "2024-01-01")] == ("runnable", "new")
    assert ws.backend().get_cell("price_level", "2024-01-02").category == "pricing"
    assert "repairs" not in ws.build("--dry-run", date="2024-01-02")  # a dry run changes nothing
    report = ws.build(date="2024-01-01")
    assert report["repairs"] == [
        "//market:price_level moved from package 'pricing': "
        "2 cells of the old package deleted, it is built anew"
    ]
    cells = ws.cells(report)
    assert cells[("//market:price_level", "2024-01-01")] == ("ran", "new")
    assert ws.backend().get_cell("price_level", "2024-01-01").category == "market"
    assert (
        ws.backend().get_cell("price_level", "2024-01-02") is None
    )  # the old package's cell is gone


def test_jobs_2_is_byte_identical(ws, tmp_path):
    import shutil

    other = tmp_path / "copy"
    shutil.copytree(ws.root, other)
    from tests.execution.conftest import Workspace

    copy = Workspace(other)
    ws.build()
    report = copy.build("--jobs", "2")
    assert report["summary"]["ran"] == 12
    a, b = ws.backend(), copy.backend()
    for name in ("value", "total", "sign", "price_level"):
        for day in ("2024-01-01", "2024-01-02", "2024-01-03"):
            assert a.get_cell(name, day).result_hash == b.get_cell(name, day).result_hash
            assert a.read_result(name, day) == b.read_result(name, day)


def test_undeclared_root_and_dep_are_errors_naming_the_target(ws):
    ws.edit("calculations/pricing/levels.py", 'ctx.root("prices")', 'ctx.root("portfolio")')
    report = ws.build("//pricing:price_level", date="2024-01-01", expect=1)
    assert (
        "//pricing:price_level: reads root source 'portfolio', which is not in its roots"
        in report["cells"][0]["detail"]
    )


def test_unknown_root_source_is_a_workspace_error(ws):
    ws.edit("calculations/pricing/BUILD.toml", 'roots = ["prices"]', 'roots = ["price"]')
    code, out, err = ws.cli("build", "//...", "--date", "2024-01-01")
    assert code == 2
    assert (
        err.strip()
        == "btbuild: error: calculations/pricing/BUILD.toml:15: //pricing:price_level: unknown root source 'price' (did you mean 'prices'?)"
    )


def test_explain_and_status(ws):
    ws.build(date="2024-01-02")
    ws.edit("calculations/pricing/calcs.py", "return sum(", "return 3 * sum(")
    code, out, _ = ws.cli("explain", V, "--date", "2024-01-02")
    assert code == 0
    assert out.startswith("//pricing:value 2024-01-02: runnable (code_changed)")
    assert "CHANGED code" in out and "same    roots:prices" in out
    code, out, _ = ws.cli("status", "//pricing:value", "--date", "2024-01-03")
    assert code == 0
    assert "//pricing:value  RRN" in out


def test_per_user_cells_merge_several_user_streams(ws):
    """A per_user target reading a per_user dep, a user root and its own previous day."""
    ws.write(
        "calculations/share/BUILD.toml",
        '[calculation.share]\nentry = "s:share"\ndeps = ["//pricing:value", "//pricing:total"]\n'
        'roots = ["portfolio"]\nhistorical = true\nlookback = { portfolio = 1 }\n',
    )
    ws.write(
        "calculations/share/s.py",
        "def share(ctx):\n"
        "    mine = ctx.dep('value')\n"
        "    yesterday = ctx.user.get('portfolio', days_ago=1)\n"
        "    return {'share': round(mine / ctx.dep('total')['total'], 9), 'user': ctx.user.id,\n"
        "            'had_yesterday': yesterday is not None, 'days': (ctx.previous or {}).get('days', 0) + 1}\n",
    )
    ws.build("//share:share", date="2024-01-03")
    backend = ws.backend()
    day3 = backend.read_result("share", "2024-01-03")
    values = backend.read_result("value", "2024-01-03")
    total = backend.read_result("total", "2024-01-03")["total"]
    assert sorted(day3) == USERS
    for user in USERS:
        assert day3[user] == {
            "share": round(values[user] / total, 9),
            "user": user,
            "had_yesterday": True,
            "days": 3,
        }
    assert backend.read_result("share", "2024-01-01")["u001"]["had_yesterday"] is False


def test_misspelled_checks_key_is_a_workspace_error(ws):
    ws.edit(
        "calculations/pricing/BUILD.toml",
        'roots = ["prices"]\n',
        'roots = ["prices"]\nchecks = { null_densty = 0.9 }\n',
    )
    code, _out, err = ws.cli("build", "//...", "--date", "2024-01-01")
    assert code == 2
    assert (
        "calculations/pricing/BUILD.toml" in err
        and "//pricing:price_level" in err
        and "null_densty" in err
    )


def test_run_log_has_one_record_per_attempt(ws):
    ws.build(date="2024-01-02")
    runs = ws.backend().runs(limit=1000)
    assert len(runs) == 8
    assert {(r.target, r.date) for r in runs} == {
        (n, d)
        for n in ("value", "total", "sign", "price_level")
        for d in ("2024-01-01", "2024-01-02")
    }
    build_ids = {r.run_id.split("/")[0] for r in runs}
    assert len(build_ids) == 1 and all(r.status == "committed" and r.trigger == "new" for r in runs)
    assert all("compute" in r.phases for r in runs)


def test_fast_input_key_equals_the_reference_function(ws):
    """The planner inlines the input key for speed; it must equal analysis.cells.input_key."""
    from btbuild.analysis.cells import input_key
    from btbuild.execution.build import BuildRequest, Scheduler
    from btbuild.session import Session

    ws.write(
        "calculations/hist/BUILD.toml",
        '[calculation.running]\nentry = "h:running"\nkind = "per_date"\ndeps = ["//pricing:total", "//pricing:price_level"]\nhistorical = true\n',
    )
    ws.write("calculations/hist/h.py", "def running(ctx):\n    return (ctx.previous or 0) + 1\n")
    ws.build(date="2024-01-03")
    session = Session(ws.root)
    scheduler = Scheduler(
        session, BuildRequest(patterns=("//...",), end=__import__("datetime").date(2024, 1, 3))
    ).plan()
    checked = 0
    for label in scheduler.order:
        target = scheduler.targets[label]
        for day in scheduler.dates:
            decision, task, inputs = scheduler.planner.decide(target, day)
            scheduler.planner.settle(target, day)
            assert inputs is not None and decision.reason == "up_to_date"
            assert inputs.key == input_key(
                inputs.static, inputs.root_fingerprints, inputs.dep_results
            )
            assert inputs.key == scheduler.cache.full_record(target.name, day).composite_hash
            checked += 1
    session.close()
    assert checked == 15


def test_the_first_plan_reads_the_cache_read_begun_before_hashing_a_replan_reads_afresh(
    ws, monkeypatch
):
    """The scheduler begins its first cache read (Backend.start_read_checked: Firestore sends
    its query then) before the code is hashed and finishes it in the first plan; a round that
    plans again reads the cache as it is then."""
    from datetime import date

    from btbuild.execution.build import BuildRequest, Scheduler
    from btbuild.session import Session

    ws.build(date="2024-01-02")
    session = Session(ws.root)
    backend = session.backend
    events: list[str] = []
    begin, read = backend.start_read_checked, backend.read_checked

    def start_read_checked(targets, dates):
        events.append("begun, hashed" if "hashes" in session.__dict__ else "begun, not hashed")
        finish = begin(targets, dates)
        return lambda: events.append("finished") or finish()

    monkeypatch.setattr(backend, "start_read_checked", start_read_checked)
    monkeypatch.setattr(backend, "read_checked", lambda *a: events.append("read") or read(*a))
    scheduler = Scheduler(session, BuildRequest(patterns=("//...",), end=date(2024, 1, 2)))
    assert events == ["begun, not hashed"] and "hashes" in session.__dict__
    scheduler.plan()
    assert events == ["begun, not hashed", "finished", "read"]  # (the default finish reads)
    assert ("value", "2024-01-02") in scheduler.cache.summaries
    assert backend.forget_result("value", "2024-01-02")
    cache, _planner = scheduler._plan()
    assert events[3:] == ["read"] and ("value", "2024-01-02") not in cache.summaries
    session.close()


def test_a_crashed_attempt_is_taken_over_and_its_shards_removed(ws):
    """A builder that died mid-cell leaves a RUNNING cell and invisible shards; once its lease
    expired the next build takes the cell over, deletes the leftovers and commits."""
    import sqlite3
    import time

    backend = ws.backend()
    lease = backend.acquire(
        "value", "2024-01-01", "dead-builder", lease_seconds=1, now=time.time() - 10
    )
    writer = backend.open_writer(lease, "per_user")
    writer.add_user("u001", 1.0)
    writer.flush()  # shards of the dead attempt, never committed
    backend.close()
    cells = ws.cells(ws.build("//pricing:value", date="2024-01-01"))
    assert cells[(V, "2024-01-01")] == ("ran", "new")
    conn = sqlite3.connect(ws.root / ".btbuild" / "cache.db")
    generations = {
        row[0] for row in conn.execute("SELECT generation FROM shards WHERE target = 'value'")
    }
    assert lease.generation not in generations and len(generations) == 1
    assert ws.backend().read_result("value", "2024-01-01")["u001"] == 10.0


def test_a_lease_of_a_dead_local_builder_is_taken_over_at_once(ws):
    """kill -9 of a build leaves live leases; on the same machine its pid is known to be gone."""
    import socket

    import psutil

    dead = next(pid for pid in range(999_999, 1, -1) if not psutil.pid_exists(pid))
    backend = ws.backend()
    assert backend.acquire("value", "2024-01-01", f"{socket.gethostname()}:{dead}", 900) is not None
    assert (
        backend.acquire("total", "2024-01-01", "elsewhere:1", 900) is not None
    )  # alive somewhere else
    backend.close()
    cells = ws.cells(ws.build("//pricing:total", "--no-wait", date="2024-01-01", expect=1))
    assert cells[(V, "2024-01-01")] == ("ran", "new")
    assert cells[(T, "2024-01-01")] == ("blocked", "leased")


def test_an_interrupted_build_gives_its_cells_back(ws):
    """A real Ctrl-C (SIGINT) while a calculation runs; a KeyboardInterrupt *raised* by the
    code is that code's failure instead (tests/execution/test_hostile.py)."""
    import signal

    # as in a terminal: a test run started in the background by a shell without job control
    # inherits SIGINT ignored (and a build then rightly ignores it too)
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        _interrupted_build(ws)
    finally:
        signal.signal(signal.SIGINT, previous)


def _interrupted_build(ws):
    ws.edit(
        "calculations/pricing/calcs.py",
        "    prices = ctx.root",
        "    if ctx.user.id == 'u010':\n        import os, signal; os.kill(os.getpid(), signal.SIGINT)\n    prices = ctx.root",
    )
    code, _out, err = ws.cli("build", "//pricing:value", "--date", "2024-01-01")
    assert code == 130 and err.strip() == "btbuild: interrupted"
    backend = ws.backend()
    assert backend.get_cell("value", "2024-01-01") is None  # as before the attempt: never built
    import sqlite3

    assert sqlite3.connect(ws.root / ".btbuild" / "cache.db").execute(
        "SELECT count(*) FROM shards"
    ).fetchone() == (0,)
    ws.edit(
        "calculations/pricing/calcs.py",
        "    if ctx.user.id == 'u010':\n        import os, signal; os.kill(os.getpid(), signal.SIGINT)\n",
        "",
    )
    assert ws.cells(ws.build("//pricing:value", date="2024-01-01"))[(V, "2024-01-01")] == (
        "ran",
        "new",
    )


def test_a_daily_target_reads_the_latest_result_of_a_weekly_dep(ws):
    """As-of semantics: on days the weekly dep is not due, its last due result is read."""
    ws.edit(
        "calculations/pricing/BUILD.toml",
        'entry = "levels:level"',
        'entry = "levels:level"\nschedule = { weekdays = [0] }',
    )
    ws.write(
        "calculations/use/BUILD.toml",
        '[calculation.uses_level]\nentry = "u:f"\nkind = "per_date"\ndeps = ["//pricing:price_level"]\n',
    )
    ws.write(
        "calculations/use/u.py",
        "def f(ctx):\n    return {'first': ctx.dep('price_level')[0], 'day': ctx.date.isoformat()}\n",
    )
    cells = ws.cells(ws.build("//use:uses_level", date="2024-01-03"))
    assert cells[(L, "2024-01-01")] == ("ran", "new")  # Monday
    assert cells[(L, "2024-01-02")] == ("skipped", "not_scheduled")
    assert all(
        cells[("//use:uses_level", d)] == ("ran", "new")
        for d in ("2024-01-01", "2024-01-02", "2024-01-03")
    )
    backend = ws.backend()
    monday = backend.read_result("price_level", "2024-01-01")[0]
    assert backend.read_result("uses_level", "2024-01-03") == {"first": monday, "day": "2024-01-03"}
    # new data for Monday: the weekly cell re-runs and every day that read it follows
    write_day(ws.root, date(2024, 1, 1), price_bump=5.0)
    again = ws.cells(ws.build("//use:uses_level", date="2024-01-03"))
    assert again[(L, "2024-01-01")] == ("ran", "roots_changed")
    assert {again[("//use:uses_level", d)] for d in ("2024-01-02", "2024-01-03")} == {
        ("ran", "deps_changed")
    }


def test_from_reads_the_previous_day_of_a_historical_target_from_the_cache(ws):
    ws.write(
        "calculations/hist/BUILD.toml",
        '[calculation.count]\nentry = "h:count"\nkind = "per_date"\nroots = ["prices"]\nhistorical = true\n',
    )
    ws.write("calculations/hist/h.py", "def count(ctx):\n    return (ctx.previous or 0) + 1\n")
    ws.build("//hist:count", date="2024-01-02")
    cells = ws.cells(ws.build("//hist:count", "--from", "2024-01-03", date="2024-01-04"))
    assert set(cells) == {("//hist:count", "2024-01-03"), ("//hist:count", "2024-01-04")}
    assert ws.backend().read_result("count", "2024-01-04") == 4
    # without the earlier days in the cache, --from cannot start the chain: a blocked cell is
    # not done, so the build exits 1 (exit 0 means every requested cell is done and current)
    (ws.root / ".btbuild" / "cache.db").unlink()
    blocked = ws.cells(
        ws.build("//hist:count", "--from", "2024-01-03", date="2024-01-03", expect=1)
    )
    assert blocked[("//hist:count", "2024-01-03")] == ("blocked", "waiting_for_previous_day")


def test_user_shards_split_per_user_cells_and_combine_to_the_same_result(ws, tmp_path):
    """[execution] user_shards = 3 with --jobs 2: each per_user cell runs as 3 parts in
    parallel, then a combine; results and hashes equal an unsharded build's, no part is left."""
    import shutil
    import sqlite3

    from tests.execution.conftest import Workspace

    other = tmp_path / "sharded"
    shutil.copytree(ws.root, other)
    sharded = Workspace(other)
    sharded.edit("BUILD.toml", "max_attempts = 2\n", "max_attempts = 2\nuser_shards = 3\n")
    ws.build()
    report = sharded.build("--jobs", "2")
    assert report["summary"] == ws.build()["summary"] | {"ran": 12, "skipped": 0}
    assert all(c["status"] == "ran" and c["reason"] == "new" for c in report["cells"])
    a, b = ws.backend(), sharded.backend()
    for name in ("value", "total", "sign", "price_level"):
        for day in ("2024-01-01", "2024-01-02", "2024-01-03"):
            assert a.get_cell(name, day).result_hash == b.get_cell(name, day).result_hash
            assert a.read_result(name, day) == b.read_result(name, day)
    conn = sqlite3.connect(other / ".btbuild" / "cache.db")
    assert conn.execute("SELECT count(*) FROM cells WHERE target LIKE '%~%'").fetchone() == (0,)
    assert conn.execute("SELECT count(*) FROM shards WHERE target LIKE '%~%'").fetchone() == (0,)
    logged = {run.target for run in b.runs(limit=1000)}
    assert {
        f"value~2024-01-0{d}~{k}of3" for d in (1, 2, 3) for k in (1, 2, 3)
    } <= logged  # the parts ran
    assert sharded.build("--jobs", "2")["summary"]["ran"] == 0


def test_a_failing_part_fails_the_sharded_cell_and_keeps_the_old_result(ws):
    ws.edit("BUILD.toml", "max_attempts = 2\n", "max_attempts = 2\nuser_shards = 2\n")
    ws.build("//pricing:value", "--jobs", "2", date="2024-01-01")
    before = ws.backend().read_result("value", "2024-01-01")
    ws.edit(
        "calculations/pricing/calcs.py",
        "    prices = ctx.root",
        "    raise ValueError('broken')\n    prices = ctx.root",
    )
    report = ws.build("//pricing:value", "--jobs", "2", date="2024-01-01", expect=1)
    cell = report["cells"][0]
    assert (cell["status"], cell["reason"]) == ("failed", "code_changed")
    assert "circuit breaker" in cell["detail"] and "ValueError: broken" in cell["detail"]
    backend = ws.backend()
    assert backend.read_result("value", "2024-01-01") == before
    record = backend.get_cell("value", "2024-01-01")
    assert record.status == "failed" and "broken" in record.last_error
    again = ws.build("//pricing:value", "--jobs", "2", "--dry-run", date="2024-01-01")
    assert (again["cells"][0]["status"], again["cells"][0]["reason"]) == ("runnable", "retry")


def test_a_worker_with_other_code_refuses_the_task(ws):
    """A task planned from other code (a worker deployed from another revision) is refused
    before anything is written, instead of caching results under the wrong inputs."""
    from dataclasses import replace

    from btbuild.execution.build import BuildRequest, Scheduler
    from btbuild.execution.runner import Environment, run_group, static_hashes
    from btbuild.execution.tasks import GroupTask
    from btbuild.session import Session

    session = Session(ws.root)
    scheduler = Scheduler(
        session, BuildRequest(patterns=("//pricing:value",), end=date(2024, 1, 1))
    ).plan()
    _decision, task, _inputs = scheduler.planner.decide(scheduler.targets[V], date(2024, 1, 1))
    env = Environment(session.workspace, session.plugins, session.backend, static_hashes(session))
    stale = replace(task, static="0" * 32)
    (outcome,) = run_group(env, GroupTask(date(2024, 1, 1), 1, (stale,), "r"))
    assert outcome.status == "failed" and "differ from the build's plan" in outcome.error
    assert session.backend.get_cell("value", "2024-01-01") is None
    (ok,) = run_group(env, GroupTask(date(2024, 1, 1), 1, (task,), "r"))
    assert ok.status == "ran"
    session.close()


def test_an_interrupt_while_a_cell_starts_gives_its_lease_back(ws):
    """A real Ctrl-C (or a worker's SIGTERM) after the lease is taken but before the cell's
    calculation is called (here: while its module is imported) gives the lease back as it was:
    the interrupted attempt is not counted, and no dead lease is left for the next builder to
    take over (which counted it as a failed attempt, towards max_attempts)."""
    import signal

    ws.write(
        "calculations/stop/BUILD.toml",
        '[calculation.stops]\nentry = "s:f"\nkind = "per_date"\nroots = ["prices"]\n',
    )
    ws.write(
        "calculations/stop/s.py",
        "import os, signal\nos.kill(os.getpid(), signal.SIGINT)\n\n\ndef f(ctx):\n    return 1\n",
    )
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        code, _out, err = ws.cli("build", "//stop:stops", "--date", "2024-01-01")
    finally:
        signal.signal(signal.SIGINT, previous)
    assert code == 130 and err.strip() == "btbuild: interrupted"
    assert ws.backend().get_cell("stops", "2024-01-01") is None  # as before: never built


def test_an_interrupt_while_a_cell_runs_again_gives_its_lease_back(ws):
    """The same for a cell taken again within the group: a cell whose module state changed
    is given back and run again on a fresh import (btbuild/execution/fresh.py); a Ctrl-C
    during that import leaves the second date as it was, the first one committed."""
    import signal

    ws.write(
        "calculations/stop/BUILD.toml",
        '[calculation.keeps]\nentry = "s:f"\nkind = "per_date"\nroots = ["prices"]\n',
    )
    ws.write(
        "calculations/stop/s.py",
        "import os, signal, sys\n\n"
        "IMPORTS = getattr(sys, '_btbuild_test_imports', 0)\n"
        "sys._btbuild_test_imports = IMPORTS + 1\n"
        "if IMPORTS == 1:  # the fresh import of the second date's re-run\n"
        "    os.kill(os.getpid(), signal.SIGINT)\n"
        "_HISTORY = []\n\n\n"
        "def f(ctx):\n    _HISTORY.append(1)\n    return len(_HISTORY)\n",
    )
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        code, _out, err = ws.cli(
            "build", "//stop:keeps", "--from", "2024-01-01", "--date", "2024-01-02"
        )
    finally:
        signal.signal(signal.SIGINT, previous)
        import sys

        sys.__dict__.pop("_btbuild_test_imports", None)
    assert code == 130 and err.strip() == "btbuild: interrupted"
    backend = ws.backend()
    first = backend.get_cell("keeps", "2024-01-01")
    assert first is not None and first.status == "committed"
    assert backend.get_cell("keeps", "2024-01-02") is None  # as before: never built


def test_a_record_naming_other_inputs_than_it_lists_is_never_up_to_date(ws):
    """A record whose composite hash is not the key of the inputs it lists (garbled, or
    written by something keying other inputs) is rebuilt, never skipped as up to date."""
    import sqlite3

    ws.build("//pricing:value", date="2024-01-01")
    with sqlite3.connect(ws.root / ".btbuild" / "cache.db") as conn:
        conn.execute(
            "UPDATE cells SET composite_hash = ? WHERE target = 'value' AND date = '2024-01-01'",
            ["0" * 32],
        )
    cells = ws.cells(ws.build("//pricing:value", date="2024-01-01"))
    assert cells[(V, "2024-01-01")] == ("ran", "damaged")
