from __future__ import annotations

import json
from pathlib import Path

import pytest
from hashing_helpers import CALC, make_target, make_workspace_value

import btbuild.hashing.layers as layers_module
from btbuild.hashing import FileFacts, HashCache, ImportRecord, compute_hashes
from btbuild.hashing.cache import CACHE_RELATIVE_PATH

FACTS = FileFacts("0" * 32, (ImportRecord("layers.x", 0, ()), ImportRecord("", 1, ("y",))))


def test_round_trip_through_disk(tmp_path: Path) -> None:
    cache = HashCache(tmp_path / "c.json")
    key = cache.key_for(b"x = 1\n")
    cache.put(key, FACTS)
    cache.save()
    again = HashCache(tmp_path / "c.json")
    assert again.get(key) == FACTS
    assert again.hits == 1


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"{",
        b"\xff\xfe garbage",
        b"[]",
        b'{"format": "btbuild-hashcache", "tool": "other", "entries": {}}',
        b'{"format": "btbuild-hashcache", "tool": null, "entries": []}',
    ],
    ids=["empty", "truncated", "binary", "list", "other-tool", "bad-entries"],
)
def test_unreadable_cache_file_is_a_miss(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "c.json"
    path.write_bytes(content)
    cache = HashCache(path)
    assert len(cache) == 0
    assert cache.get(cache.key_for(b"x")) is None


def test_truncated_real_cache_is_a_miss(tmp_path: Path) -> None:
    path = tmp_path / "c.json"
    cache = HashCache(path)
    cache.put("a" * 32, FACTS)
    cache.save()
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    assert HashCache(path).get("a" * 32) is None


@pytest.mark.parametrize(
    "entry",
    [
        None,
        "text",
        {"code": "xyz", "imports": []},
        {"code": "0" * 32},
        {"code": "0" * 32, "imports": [["m", -1, []]]},
        {"code": "0" * 32, "imports": [["m", 0, [1]]]},
        {"code": "0" * 32, "imports": [["m", True, []]]},
    ],
)
def test_malformed_entry_is_a_miss(tmp_path: Path, entry: object) -> None:
    path = tmp_path / "c.json"
    HashCache(path).save()  # nothing dirty: writes nothing
    assert not path.exists()
    cache = HashCache(path)
    cache.put("k" * 32, FACTS)
    cache.save()
    document = json.loads(path.read_text())
    document["entries"]["k" * 32] = entry
    path.write_text(json.dumps(document))
    assert HashCache(path).get("k" * 32) is None


def test_missing_directory_is_created_and_write_is_atomic(tmp_path: Path) -> None:
    cache = HashCache.for_workspace(tmp_path)
    cache.put("b" * 32, FACTS)
    cache.save()
    assert (tmp_path / CACHE_RELATIVE_PATH).is_file()
    assert [p.name for p in (tmp_path / ".btbuild").iterdir()] == ["hashcache.json"]  # no temp left


def test_unwritable_location_does_not_crash(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    cache = HashCache(blocker / "sub" / "c.json")  # parent is a file: mkdir fails
    cache.put("c" * 32, FACTS)
    cache.save()
    assert cache.get("c" * 32) == FACTS


def test_warm_run_parses_nothing(tree, no_distributions, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tree({"calculations/p/a.py": f"import layers.h\n{CALC}", "layers/h.py": "X = 1\n"})
    workspace = make_workspace_value(root, [make_target(root, "a")])
    cold = compute_hashes(
        workspace, distributions=no_distributions, cache=HashCache.for_workspace(root)
    )

    def fail(*args: object, **kwargs: object) -> FileFacts:
        raise AssertionError("a warm run must not parse")

    monkeypatch.setattr(layers_module, "analyze_source", fail)
    warm_cache = HashCache.for_workspace(root)
    assert compute_hashes(workspace, distributions=no_distributions, cache=warm_cache) == cold
    assert warm_cache.misses == 0 and warm_cache.hits == 2


def test_changed_file_is_re_analyzed(tree, no_distributions) -> None:
    root = tree({"calculations/p/a.py": CALC})
    workspace = make_workspace_value(root, [make_target(root, "a")])
    first = compute_hashes(
        workspace, distributions=no_distributions, cache=HashCache.for_workspace(root)
    )
    tree({"calculations/p/a.py": CALC.replace("1", "2")})
    cache = HashCache.for_workspace(root)
    second = compute_hashes(workspace, distributions=no_distributions, cache=cache)
    assert cache.misses == 1
    assert first["a"].code != second["a"].code
    uncached = compute_hashes(workspace, distributions=no_distributions)
    assert uncached == second


def test_corrupt_cache_on_disk_gives_same_hashes(tree, no_distributions) -> None:
    root = tree({"calculations/p/a.py": CALC})
    workspace = make_workspace_value(root, [make_target(root, "a")])
    reference = compute_hashes(
        workspace, distributions=no_distributions, cache=HashCache.for_workspace(root)
    )
    (root / CACHE_RELATIVE_PATH).write_bytes(b'{"format": "btbuild-hashcache", "tool": ')
    assert (
        compute_hashes(
            workspace, distributions=no_distributions, cache=HashCache.for_workspace(root)
        )
        == reference
    )
    assert json.loads((root / CACHE_RELATIVE_PATH).read_text())["entries"]  # rewritten whole


def test_facts_cached_by_other_hashing_code_are_not_reused(tmp_path: Path) -> None:
    """A cache written by a btbuild with the same hash scheme and Python but other hashing
    code (an upgrade that fixed what a file's facts are without bumping the scheme) is a miss:
    its facts could hide a change the new code sees."""
    from btbuild.hashing.cache import cache_tool_key
    from btbuild.hashing.infra import HASH_SCHEME_VERSION, python_minor

    older = f"scheme={HASH_SCHEME_VERSION};python={python_minor()}"
    assert cache_tool_key().startswith(older + ";code=")
    path = tmp_path / "c.json"
    cache = HashCache(path)
    key = cache.key_for(b"x = 1\n")
    cache.put(key, FACTS)
    cache.save()
    document = json.loads(path.read_text())
    document["tool"] = older + ";code=0123456789abcdef"
    path.write_text(json.dumps(document))
    assert HashCache(path).get(key) is None
