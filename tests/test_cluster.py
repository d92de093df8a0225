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
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from speechinpaint.batch import RECORD_NAME
from speechinpaint.cli import main

from conftest import DATA
from test_batch import audio_files, record

ray = pytest.importorskip("ray", reason="Ray is the optional extra speechinpaint[cluster] (make test installs it)")

RAY = Path(sys.executable).parent / "ray"
START_SECONDS = 120  # a node start on a starved shared CPU; normally 3-5 s


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def can_hide_a_folder() -> bool:
    """Whether a process can get its own mount namespace here (root, or unprivileged user namespaces)."""
    if shutil.which("unshare") is None:
        return False
    probe = tempfile.mkdtemp(prefix="si-ns-")
    try:
        for flags in (["-m"], ["-rm"]):
            if subprocess.run(["unshare", *flags, "mount", "-t", "tmpfs", "none", probe], capture_output=True,
                              timeout=30).returncode == 0:
                return True
        return False
    finally:
        os.rmdir(probe)


class LoopbackCluster:
    """A head node and worker nodes of Ray on 127.0.0.1, each a `ray start --block` process group."""

    def __init__(self, root: Path):
        self.root, self.port = root, free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.hidden = root / "hidden"  # what the second node cannot see
        self.hidden.mkdir()
        # A node that stops answering is declared dead after about 3 s instead of Ray's default 15-30 s.
        self.env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path), RAY_USAGE_STATS_ENABLED="0",
                        RAY_health_check_initial_delay_ms="1000", RAY_health_check_period_ms="1000",
                        RAY_health_check_timeout_ms="1000", RAY_health_check_failure_threshold="3")
        self.nodes: list[subprocess.Popen] = []
        self.hiding = can_hide_a_folder()

    def start(self, name: str, head: bool = False, hide: bool = False) -> subprocess.Popen:
        args = [str(RAY), "start", "--block", "--node-ip-address", "127.0.0.1", "--num-cpus", "1",
                "--temp-dir", str(self.root / name), "--disable-usage-stats"]
        args += ["--head", "--port", str(self.port), "--include-dashboard", "false"] if head else ["--address", self.address]
        if hide:
            flags = "-m" if os.geteuid() == 0 else "-rm"
            args = ["unshare", flags, "sh", "-c", f'mount -t tmpfs none "{self.hidden}" && exec "$@"', "sh", *args]
        before = self.count()
        log = open(self.root / f"{name}.log", "w")
        node = subprocess.Popen(args, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        self.nodes.append(node)
        deadline = time.monotonic() + START_SECONDS
        while self.count() <= before:
            if node.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"Ray node {name} did not start: {(self.root / f'{name}.log').read_text()[-2000:]}")
            time.sleep(0.5)
        return node

    def count(self) -> int:
        """Alive nodes, as `ray status` lists them (0 while there is no head)."""
        if not self.nodes:
            return 0
        status = subprocess.run([str(RAY), "status", "--address", self.address], env=self.env, capture_output=True,
                                text=True, timeout=60)
        active = status.stdout.split("Active:")[-1].split("Pending:")[0] if status.returncode == 0 else ""
        return sum(line.strip().startswith("1 node_") for line in active.splitlines())

    def stop(self, node: subprocess.Popen, hard: bool = False) -> None:
        """A node's whole process group: SIGKILL at once (hard: the node dies) or after 5 s of SIGTERM."""
        if node.poll() is None and not hard:
            os.killpg(node.pid, signal.SIGTERM)
            try:
                node.wait(5)
            except subprocess.TimeoutExpired:
                pass
        try:
            os.killpg(node.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        node.wait(30)

    def close(self) -> None:
        for node in reversed(self.nodes):  # workers first, the head last
            self.stop(node)


@pytest.fixture(scope="module")
def cluster():
    root = Path(tempfile.mkdtemp(prefix="si-ray-"))  # short: Ray's socket paths live under it
    loop = LoopbackCluster(root)
    try:
        loop.start("head", head=True)
        loop.start("node2", hide=loop.hiding)
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
    assert json.loads((tmp_path / "ray.json").read_text())["files"] == json.loads((tmp_path / "workers.json").read_text())["files"]


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
