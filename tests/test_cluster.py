"""Batches over a real Ray cluster (cluster.py): two nodes on 127.0.0.1, started and stopped here.

The nodes are `ray start --block` processes, each with its own temporary folder, joined over the
loopback address (the set-up the README gives). The second node runs in its own mount namespace with an
empty file system over one folder, so it is a node that cannot see that path: a cluster without shared
storage, on one machine. Each node is stopped by its own process group, never by `ray stop` (which would
stop every Ray process of the user on this machine)."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from speechinpaint.batch import RECORD_NAME
from speechinpaint.cli import main
from speechinpaint.cluster import LoopbackCluster

from conftest import DATA
from test_batch import audio_files, record

ray = pytest.importorskip("ray", reason="Ray is the optional extra speechinpaint[cluster] (make test installs it)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def hiding_prefix(folder: Path) -> tuple[str, ...] | None:
    """A command prefix that runs a process in its own mount namespace with an empty file system over
    `folder` (root, or unprivileged user namespaces), or None where this system allows neither."""
    if shutil.which("unshare") is None:
        return None
    for flags in (["-m"], ["-rm"]):
        if subprocess.run(["unshare", *flags, "mount", "-t", "tmpfs", "none", str(folder)], capture_output=True,
                          timeout=30).returncode == 0:
            return ("unshare", *flags, "sh", "-c", f'mount -t tmpfs none "{folder}" && exec "$@"', "sh")
    return None


@pytest.fixture(scope="module")
def cluster():
    """Two nodes of one CPU each; the second cannot see the folder `cluster.hidden`. Ray's health check
    declares a node that stops answering dead after about 10 s instead of its default 15-30 s (not sooner:
    on a loaded machine a live node can miss a few 1 s checks)."""
    root = Path(tempfile.mkdtemp(prefix="si-ray-"))  # short: Ray's socket paths live under it
    loop = LoopbackCluster(root, {"PYTHONPATH": os.pathsep.join(sys.path), "RAY_health_check_initial_delay_ms": "1000",
                                  "RAY_health_check_period_ms": "1000", "RAY_health_check_timeout_ms": "2000",
                                  "RAY_health_check_failure_threshold": "5"})
    loop.hidden = root / "hidden"
    loop.hidden.mkdir()
    prefix = hiding_prefix(loop.hidden)
    loop.hiding = prefix is not None
    try:
        loop.start("head")
        loop.start("node2", prefix=prefix or ())
        yield loop
    finally:
        loop.close()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> tuple[Path, Path]:
    """Eight damaged clips (holes, masks beside them) and their restoration by one process."""
    root = tmp_path_factory.mktemp("ray-files")
    clean = root / "clean"
    clean.mkdir()
    for i, name in enumerate(["da_mercury.wav", "da_mars.wav", "da_7spoke.wav", "lt_letters_d_a_b.wav"] * 2):
        (clean / f"{i}_{name}").write_bytes((DATA / name).read_bytes())
    assert main(["corrupt", str(clean), "-o", str(root / "holes"), "--kind", "holes", "--seed", "5"]) == 0
    # The tests run torch on one thread (conftest), as each Ray task does: the same bytes are expected.
    assert main(["restore", str(root / "holes"), "-o", str(root / "one"), "--workers", "1"]) == 0
    return root / "holes", root / "one"


def run(capsys, *argv) -> tuple[int, str, str]:
    rc = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return rc, captured.out, captured.err


def test_restore_and_detect_on_ray_equal_one_process(capsys, tmp_path, cluster, files):
    holes, one = files
    rc, _, err = run(capsys, "restore", holes, "-o", tmp_path / "out", "--ray", cluster.address)
    assert rc == 0 and err.strip().splitlines()[-1] == "8 restored, 0 failed", err
    assert audio_files(tmp_path / "out") == audio_files(one)
    lines = record(tmp_path / "out")
    assert lines[0]["ray"] == cluster.address and all(" node " in line["worker"] for line in lines[1:-1])
    rc, out, _ = run(capsys, "detect", holes, "-o", tmp_path / "masks", "--ray", cluster.address)
    assert rc == 0 and len(out.splitlines()) == 8
    assert main(["detect", str(holes), "-o", str(tmp_path / "masks_one"), "--workers", "1"]) == 0
    assert audio_files(tmp_path / "masks") == audio_files(tmp_path / "masks_one")


def test_evaluate_on_ray_scores_as_one_process(capsys, tmp_path, cluster, files):
    holes, one = files
    for where in (["--workers", "1"], ["--ray", cluster.address]):
        out = tmp_path / f"{where[0][2:]}.json"
        rc, _, _ = run(capsys, "evaluate", "--reference", one, "--estimate", holes, "--metrics", "stoi,lsd,lsd_mask",
                       "--json", out, *where)
        assert rc == 0
    rows = {name: json.loads((tmp_path / f"{name}.json").read_text())["files"] for name in ("ray", "workers")}
    assert rows["ray"] == rows["workers"]


def test_a_node_lost_mid_batch_costs_only_its_files_and_resume_does_the_rest(capsys, tmp_path, cluster, files):
    holes, one = files
    extra = cluster.start("node3")
    out = tmp_path / "out"
    # The driver in its own process, as the CLI runs; the third node dies (its processes killed) once
    # the batch is under way, with files in flight on every node.
    driver = subprocess.Popen([sys.executable, "-m", "speechinpaint.cli", "restore", str(holes), "-o", str(out),
                               "--ray", cluster.address], env=cluster.env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and not (
                (out / RECORD_NAME).is_file() and (out / RECORD_NAME).read_text().count("\n") >= 3):
            time.sleep(0.05)
        cluster.stop(extra, hard=True)
        _, err = driver.communicate(timeout=300)
    finally:
        driver.kill()
    assert driver.returncode == 0 and err.strip().splitlines()[-1] == "8 restored, 0 failed", err
    assert audio_files(out) == audio_files(one)  # every file whole, and no temporary file left
    names = [line["name"] for line in record(out)[1:-1]]
    assert sorted(names) == sorted(audio_files(one))

    # --resume after two outputs were lost: only those are restored again, the rest not rewritten.
    for name in names[:2]:
        (out / name).unlink()
    before = {p.name: os.stat(p).st_mtime_ns for p in out.glob("*.wav")}
    rc, _, err = run(capsys, "restore", holes, "-o", out, "--ray", cluster.address, "--resume")
    assert rc == 0 and err.strip().splitlines()[-1] == "2 restored, 0 failed, 6 skipped", err
    assert {name: os.stat(out / name).st_mtime_ns for name in before} == before
    assert audio_files(out) == audio_files(one)


def test_a_path_a_node_cannot_see_is_refused_before_any_work(capsys, cluster, files):
    if not cluster.hiding:
        pytest.skip("no mount namespace here (unshare), so no node can be kept from seeing a path")
    holes, _ = files
    src = cluster.hidden / "in"
    shutil.copytree(holes, src)
    rc, _, err = run(capsys, "restore", src, "-o", cluster.hidden / "out", "--ray", cluster.address)
    lines = err.strip().splitlines()
    assert rc == 1 and len(lines) == 1, err
    assert lines[0].startswith(f"speechinpaint: error: {cluster.hidden}") and "not visible on the cluster node" in lines[0]
    assert not (cluster.hidden / "out").exists()


def test_an_address_without_a_cluster_is_one_line(capsys, tmp_path, files):
    holes, _ = files
    address = f"127.0.0.1:{free_port()}"
    rc, _, err = run(capsys, "restore", holes, "-o", tmp_path / "out", "--ray", address)
    assert rc == 1 and err.strip().splitlines() == [
        f"speechinpaint: error: --ray {address}: no Ray cluster answers at {address} (Connection refused)"], err
    assert not (tmp_path / "out").exists()
