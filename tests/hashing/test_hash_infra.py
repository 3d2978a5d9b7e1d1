from __future__ import annotations

import sys

import pytest
from hashing_helpers import CALC, make_target, make_workspace_value

from btbuild.errors import PluginError
from btbuild.hashing import (
    HASH_SCHEME_VERSION,
    DistributionIndex,
    compute_hashes,
    infra_hash,
    python_minor,
)
from btbuild.hashing.infra import NOT_INSTALLED, infra_document


def _index(**versions: str) -> DistributionIndex:
    packages = {"numpy": ["numpy"], "google": ["google-cloud-core", "protobuf"], "yaml": ["PyYAML"]}
    return DistributionIndex(packages=packages, versions=versions)


def test_document_covers_python_scheme_distributions_and_extra() -> None:
    document = infra_document({"numpy": "1.26.4"}, {"region": "eu"})
    assert document == {
        "python": f"{sys.version_info.major}.{sys.version_info.minor}",
        "scheme": HASH_SCHEME_VERSION,
        "distributions": {"numpy": "1.26.4"},
        "extra": {"region": "eu"},
    }
    assert python_minor() == document["python"]


def test_each_input_changes_the_hash() -> None:
    base = infra_hash({"numpy": "1.26.4"}, {"region": "eu"})
    assert infra_hash({"numpy": "1.26.5"}, {"region": "eu"}) != base
    assert infra_hash({"numpy": "1.26.4", "pandas": "2.0"}, {"region": "eu"}) != base
    assert infra_hash({"numpy": "1.26.4"}, {"region": "us"}) != base
    assert infra_hash({"numpy": "1.26.4"}, {}) != base
    assert infra_hash({"numpy": "1.26.4"}, {"region": "eu"}) == base


def test_scheme_version_is_part_of_the_hash(monkeypatch: pytest.MonkeyPatch) -> None:
    import btbuild.hashing.infra as infra

    base = infra.infra_hash({}, {})
    monkeypatch.setattr(infra, "HASH_SCHEME_VERSION", HASH_SCHEME_VERSION + 1)
    assert infra.infra_hash({}, {}) != base


def test_versions_for_maps_imports_to_distributions() -> None:
    index = _index(numpy="1.26.4", **{"google-cloud-core": "2.4", "protobuf": "4.25"})
    assert index.versions_for(["numpy", "google", "missing_mod"]) == {
        "google-cloud-core": "2.4",
        "missing_mod": NOT_INSTALLED,
        "numpy": "1.26.4",
        "protobuf": "4.25",
    }


def test_installed_index_reads_real_metadata() -> None:
    versions = DistributionIndex.installed().versions_for(["xxhash", "libcst"])
    assert set(versions) == {"xxhash", "libcst"}
    assert all(value != NOT_INSTALLED for value in versions.values())


def test_non_string_extra_input_is_a_plugin_error() -> None:
    with pytest.raises(PluginError, match="'gpu'"):
        infra_hash({}, {"gpu": 1})  # type: ignore[dict-item]


def test_only_calcs_importing_an_upgraded_distribution_change(tree) -> None:
    root = tree(
        {
            "calculations/p/uses_numpy.py": f"import numpy as np\n{CALC}",
            "calculations/p/via_layer.py": f"import layers.num\n{CALC}",
            "layers/num.py": "from numpy import linalg\n",
            "calculations/p/plain.py": f"import json\n{CALC}",
        }
    )
    workspace = make_workspace_value(
        root,
        [
            make_target(root, "uses_numpy"),
            make_target(root, "via_layer"),
            make_target(root, "plain"),
        ],
    )
    before = compute_hashes(workspace, distributions=_index(numpy="1.26.4"))
    after = compute_hashes(workspace, distributions=_index(numpy="2.0.0"))
    changed = {name for name in before if before[name].infra != after[name].infra}
    assert changed == {"uses_numpy", "via_layer"}
    assert before["via_layer"].distributions == (("numpy", "1.26.4"),)
    assert before["plain"].distributions == ()
    for name in changed:
        assert before[name].composite != after[name].composite
        assert before[name].code == after[name].code


def test_extra_infra_changes_every_target(tree, no_distributions) -> None:
    root = tree({"calculations/p/a.py": CALC, "calculations/p/b.py": CALC})
    workspace = make_workspace_value(root, [make_target(root, "a"), make_target(root, "b")])
    one = compute_hashes(
        workspace, distributions=no_distributions, extra_infra={"plugin.market": "1"}
    )
    two = compute_hashes(
        workspace, distributions=no_distributions, extra_infra={"plugin.market": "2"}
    )
    assert all(one[name].infra != two[name].infra for name in one)
