"""The realistic corpus' figures (issue 11 "Done when"), measured through the real commands.

For every hand-written behaviour change, hand-written refactor and mechanical mutant of
tests/sim/realistic/: ``btbuild verify --base HEAD~1`` and ``btbuild build`` on a copy of a
built git workspace, judged by an oracle that runs the new code on the real data (see
tests/sim/realistic/harness.py). Prints the counts, the percentages and MET / NOT MET:

* 0 behaviour changes skipped as cosmetic (and none passed by verify);
* >= 99% of the non-equivalent mutants detected (neither skipped nor passed by verify);
* >= 90% of the refactors proven cosmetic.

    python bench/bench_corpus.py [--mutants-every N] [--mutants-offset K]
                                 [--kinds bug,refactor,mutant] [--jobs J] [--verbose]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
for folder in (ROOT / "tests" / "sim", ROOT / "tests" / "sim" / "realistic"):
    sys.path.insert(0, str(folder))

from corpus_mutants import corpus_mutants, sample  # noqa: E402
from edits import BUGS, REFACTORS  # noqa: E402
from figures import Figures  # noqa: E402
from harness import Edit, Outcome, make_base, run_case  # noqa: E402

_BASE: list[Path] = []


def _setup(base: Path) -> None:
    for folder in (ROOT / "tests" / "sim", ROOT / "tests" / "sim" / "realistic"):
        if str(folder) not in sys.path:
            sys.path.insert(0, str(folder))
    _BASE.append(base)


def _run(job: tuple[int, Edit]) -> Outcome:
    number, edit = job
    base = _BASE[0]
    return run_case(base, edit, base.parent / f"case{number}")


def _show(outcome: Outcome, verbose: bool) -> None:
    if verbose:
        print(f"  {'MISS ' if outcome.missed else ''}{outcome.summary()[:500]}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mutants-every", type=int, default=1, help="every N-th mutant (0: none)")
    parser.add_argument(
        "--mutants-offset", type=int, default=0, help="start the every-N-th sample at this one"
    )
    parser.add_argument("--jobs", type=int, default=1, help="cases run in parallel processes")
    parser.add_argument("--verbose", action="store_true", help="one line per case")
    parser.add_argument(
        "--kinds", default="bug,refactor,mutant", help="comma-separated: bug, refactor, mutant"
    )
    args = parser.parse_args()
    every = corpus_mutants()[args.mutants_offset :]
    mutants = sample(every, args.mutants_every) if args.mutants_every else []
    kinds = set(args.kinds.split(","))
    edits = [edit for edit in [*BUGS, *REFACTORS, *mutants] if edit.kind in kinds]
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="btbuild-corpus-") as tmp:
        base = make_base(Path(tmp) / "base")
        print(f"base built in {time.perf_counter() - started:.1f} s; {len(edits)} cases")
        outcomes = []
        if args.jobs > 1:
            with ProcessPoolExecutor(args.jobs, initializer=_setup, initargs=(base,)) as pool:
                for outcome in pool.map(_run, enumerate(edits)):
                    outcomes.append(outcome)
                    _show(outcome, args.verbose)
        else:
            _setup(base)
            for job in enumerate(edits):
                outcomes.append(_run(job))
                _show(outcome=outcomes[-1], verbose=args.verbose)
    figures = Figures(tuple(outcomes))
    print(f"{len(edits)} cases in {time.perf_counter() - started:.0f} s", flush=True)
    for line in figures.misses():
        print(f"  missed: {line[:400]}", flush=True)
    for line in figures.lines():
        print(line, flush=True)


if __name__ == "__main__":
    main()
