"""Setup errors are one line and exit 2; only `btbuild deploy` creates cloud resources."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
import uuid
from pathlib import Path

from tests.cloud.conftest import REPO, CloudWorkspace, make_workspace

CREATE_APIS = {
    "create_topic",
    "create_subscription",
    "update_subscription",
    "create_index",
    "update_field",
}


def test_only_deploy_calls_a_create_api() -> None:
    """Static half of least privilege: every create/update call lives in deploy.py or in the
    Firestore backend's create_indexes, and no runtime module imports deploy."""
    callers = set()
    for path in (REPO / "btbuild").rglob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef):
                for inner in ast.walk(node):
                    if (
                        isinstance(inner, ast.Call)
                        and isinstance(inner.func, ast.Attribute)
                        and inner.func.attr in CREATE_APIS
                    ):
                        callers.add((path.relative_to(REPO).as_posix(), node.name))
    assert {file for file, _ in callers} == {
        "btbuild/execution/pubsub/deploy.py",
        "btbuild/storage/firestore_admin.py",
    }, callers
    assert {name for file, name in callers if file.endswith("firestore_admin.py")} == {
        "create_indexes"
    }
    for runtime in ("dispatcher.py", "worker.py", "resources.py", "runbook.py", "wire.py"):
        tree = ast.parse((REPO / "btbuild/execution/pubsub" / runtime).read_text())
        imported = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
        assert "btbuild.execution.pubsub.deploy" not in imported, runtime


def _run(root: Path, env: dict[str, str], *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "btbuild", "--workspace", str(root), *argv],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _no_credentials(tmp_path: Path) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if key
        not in ("FIRESTORE_EMULATOR_HOST", "PUBSUB_EMULATOR_HOST", "GOOGLE_APPLICATION_CREDENTIALS")
    }
    # no gcloud ADC file, no metadata server probe: a laptop that never ran `gcloud auth`
    return dict(
        env, CLOUDSDK_CONFIG=str(tmp_path / "gcloud"), NO_GCE_CHECK="True", PYTHONPATH=str(REPO)
    )


def test_missing_credentials_are_one_line_naming_the_fix(tmp_path: Path) -> None:
    ws = make_workspace(tmp_path / "ws", '\n[storage]\nbackend = "firestore"\nprefix = "t/x"\n')
    env = _no_credentials(tmp_path)
    done = _run(ws.root, env, "worker", "--idle-exit", "1")
    assert done.returncode == 2, done.stderr
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr, done.stderr
    assert "gcloud auth application-default login" in done.stderr
    assert "FIRESTORE_EMULATOR_HOST" in done.stderr
    # Firestore on its emulator, Pub/Sub not configured: the line names Pub/Sub's variable
    env["FIRESTORE_EMULATOR_HOST"] = "127.0.0.1:9"
    for argv in (
        ("worker", "--idle-exit", "1"),
        ("build", "//...", "--date", "2024-01-01", "--executor", "pubsub"),
    ):
        done = _run(ws.root, env, *argv)
        assert done.returncode == 2, (argv, done.stderr)
        assert done.stderr.count("\n") == 1 and "DefaultCredentialsError" not in done.stderr
        assert "PUBSUB_EMULATOR_HOST" in done.stderr and "pubsub" in done.stderr, done.stderr


def test_deploy_print_lists_every_resource(tmp_path: Path) -> None:
    ws = make_workspace(
        tmp_path / "ws", '\n[storage]\nbackend = "firestore"\nprefix = "btbuild/demo"\n'
    )
    env = dict(
        _no_credentials(tmp_path), FIRESTORE_EMULATOR_HOST="127.0.0.1:9", GOOGLE_CLOUD_PROJECT="p1"
    )
    done = _run(ws.root, env, "deploy", "--print")
    assert done.returncode == 0, done.stderr
    text = done.stdout
    assert "gcloud pubsub topics create btbuild.demo.tasks btbuild.demo.dead --project=p1" in text
    assert "--max-delivery-attempts=5" in text and "--dead-letter-topic=btbuild.demo.dead" in text
    assert "--min-retry-delay=10s" in text
    assert "--collection-group=cells --field-config=field-path=target" in text
    assert "--collection-group=runs" in text and "roles/pubsub.publisher" in text


def test_a_worker_and_a_dispatcher_without_resources_name_the_command(
    tmp_path: Path, cloud: dict[str, str]
) -> None:
    prefix = f"undeployed/{uuid.uuid4().hex[:12]}"
    make_workspace(tmp_path / "ws", f'\n[storage]\nbackend = "firestore"\nprefix = "{prefix}"\n')
    ws = CloudWorkspace(tmp_path / "ws", prefix, cloud)  # nobody ran `btbuild deploy`
    env = dict(os.environ, **cloud, PYTHONPATH=str(REPO))
    worker = _run(ws.root, env, "worker", "--idle-exit", "1")
    print(f"\nworker: {worker.stderr.strip()}")
    assert worker.returncode == 2, worker.stderr
    assert worker.stderr.count("\n") == 1, worker.stderr
    assert "btbuild worker needs topic" in worker.stderr and "subscription" in worker.stderr
    assert "`btbuild deploy`" in worker.stderr
    code, _out, err = ws.cli("build", "//...", "--date", "2024-01-01", "--executor", "pubsub")
    assert code == 2 and "`btbuild deploy`" in err and err.count("\n") == 1, err
    ws.deploy()  # once, with admin rights: then the same worker starts
    code, _out, err = ws.cli("worker", "--idle-exit", "1", "--quiet")
    assert code == 0, err
