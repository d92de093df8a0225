"""A batch over a Ray cluster (`--ray ADDRESS`): one Ray task per file, the files spread by Ray.

Each task runs the same FileJob as a local worker (batch.py). Ray reuses its worker processes, so a
worker loads the model on its first file and keeps it (jobs.prepared). A task whose worker or node dies
is retried elsewhere by Ray (max_retries); since every output is written atomically, a file cut short
leaves no output, only a temporary file that the batch removes at its end. Before any work, a probe task
on every node checks that the node sees the inputs and the output folder (the cluster shares a file
system), so a cluster without shared storage is refused in one line naming the path.

Ray is an optional dependency (`pip install 'speechinpaint[cluster]'`), imported only here.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

from .jobs import FileJob, Item, Outcome, run_one
from .errors import SpeechInpaintError

# Attempts of a file beyond its first when its worker or node dies (a bad file fails without retries).
TASK_RETRIES = 3
# How long the head node may take to accept a connection.
CONNECT_SECONDS = 10.0
# How long the nodes may take to answer the shared-storage probe.
PROBE_SECONDS = 120.0
# Files in flight per CPU of the cluster: enough to keep every worker busy, few enough that the driver
# waits on a short list (Ray's own advice for many tasks).
IN_FLIGHT_PER_CPU = 2


def _ray():
    try:
        import ray
    except ImportError:
        raise SpeechInpaintError("--ray needs Ray: pip install 'speechinpaint[cluster]'") from None
    return ray


def connect(address: str):
    """Join the cluster at `address` ('auto': RAY_ADDRESS or the cluster running on this machine;
    HOST:PORT) as a driver; returns the ray module. A cluster reached over the loopback address is
    joined as a node of 127.0.0.1, so a test cluster on one machine never needs another interface."""
    ray = _ray()
    target = os.environ.get("RAY_ADDRESS", "auto") if address == "auto" else address
    host, _, port = target.removeprefix("ray://").rpartition(":")
    if port.isdigit():  # Ray itself retries an address nobody answers at for minutes
        try:
            socket.create_connection((host, int(port)), timeout=CONNECT_SECONDS).close()
        except OSError as exc:
            raise SpeechInpaintError(f"--ray {address}: no Ray cluster answers at {host}:{port} "
                                     f"({exc.strerror or exc})") from None
    local = {"_node_ip_address": "127.0.0.1"} if host in ("127.0.0.1", "localhost") else {}
    try:
        ray.init(address=address, log_to_driver=False, logging_level=logging.ERROR, **local)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise SpeechInpaintError(f"--ray {address}: cannot join the cluster ({str(exc).splitlines()[0]})") from None
    return ray


def _unseen(checks: list[tuple[str, str | None]]) -> tuple[str, list[str]]:
    """On one node: its name and the paths it cannot see (a path with text must hold that text)."""
    import ray

    unseen = []
    for path, text in checks:
        try:
            ok = os.path.exists(path) if text is None else Path(path).read_text() == text
        except OSError:
            ok = False
        if not ok:
            unseen.append(path)
    return f"{socket.gethostname()} (node {ray.get_runtime_context().get_node_id()[:8]})", unseen


def alive_nodes(ray) -> set[str]:
    """The IDs of the nodes the cluster counts as alive now."""
    return {n["NodeID"] for n in ray.nodes() if n["Alive"]}


def check_shared(ray, paths: list[str], out_dir: Path | None) -> None:
    """Refuse, before any work, a cluster with a node that cannot see one of `paths` or the output
    folder (checked with a fresh file the driver writes there, so a folder of the same name on a node's
    own disk does not pass)."""
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    checks: list[tuple[str, str | None]] = [(p, None) for p in paths]
    token = None
    created = out_dir is not None and not out_dir.exists()
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
        token = out_dir / f".speechinpaint-probe-{uuid.uuid4().hex}"
        token.write_text(token.name)
        checks.insert(0, (str(token), token.name))
    nodes = [n for n in ray.nodes() if n["NodeID"] in alive_nodes(ray) and n["Resources"].get("CPU", 0) > 0]
    probe = ray.remote(_unseen)
    try:
        refs = [probe.options(num_cpus=0, scheduling_strategy=NodeAffinitySchedulingStrategy(n["NodeID"], soft=False))
                .remote(checks) for n in nodes]
        ready, late = ray.wait(refs, num_returns=len(refs), timeout=PROBE_SECONDS)
        if late:
            raise SpeechInpaintError(f"--ray: {len(late)} of {len(nodes)} nodes did not answer the storage check "
                                     f"within {PROBE_SECONDS:.0f} s")
        for ref, node in zip(refs, nodes):
            try:
                name, unseen = ray.get(ref)
            except ray.exceptions.RayError as exc:  # a node that left since it was listed takes no work
                if node["NodeID"] not in alive_nodes(ray):
                    continue
                raise SpeechInpaintError(f"--ray: the storage check failed on node {node['NodeID'][:8]} "
                                         f"({str(exc).splitlines()[0]})") from None
            if unseen:
                path = out_dir if token is not None and unseen[0] == str(token) else unseen[0]
                raise SpeechInpaintError(f"{path}: not visible on the cluster node {name}; inputs and outputs must "
                                         "be on storage every node mounts at the same path")
    except BaseException:
        if created:  # a refused batch leaves nothing behind, not even its output folder
            token.unlink(missing_ok=True)
            out_dir.rmdir()
        raise
    finally:
        if token is not None:
            token.unlink(missing_ok=True)


def on_cluster(job: FileJob, item: Item) -> Outcome:
    """A Ray task: one file, on the task's one CPU (Ray sets its worker's OMP_NUM_THREADS to it)."""
    import ray
    import torch

    torch.set_num_threads(1)
    outcome = run_one(job, item)
    context = ray.get_runtime_context()
    outcome.worker = f"{socket.gethostname()} node {context.get_node_id()[:8]} pid {os.getpid()}"
    return outcome


class RayRunner:
    """The files of a batch as Ray tasks (batch.run_batch's runner for `--ray`)."""

    def __init__(self, job: FileJob, items: list[Item], address: str, out_dir: Path | None):
        self.ray = ray = connect(address)
        try:
            self._start(job, items, out_dir)
        except BaseException:
            ray.shutdown()
            raise

    def _start(self, job: FileJob, items: list[Item], out_dir: Path | None) -> None:
        ray = self.ray
        # Paths as every node names them: absolute, as the shared storage is mounted.
        job = dataclasses.replace(job, **{f: os.path.abspath(getattr(job, f)) for f in job.path_fields
                                          if getattr(job, f) not in (None, "auto")})
        self.items = [Item(os.path.abspath(i.input), os.path.abspath(i.output), i.name) for i in items]
        gpus = 0
        if getattr(job, "device", "cpu").startswith("cuda"):
            if not ray.cluster_resources().get("GPU"):
                raise SpeechInpaintError("--device cuda: the Ray cluster has no GPUs")
            gpus = 1
            job = dataclasses.replace(job, device="cuda")  # Ray gives each task its GPU as device 0
        paths = [self.items[0].input] + [getattr(job, f) for f in job.path_fields if getattr(job, f) not in (None, "auto")]
        check_shared(ray, paths, Path(os.path.abspath(out_dir)) if out_dir is not None else None)
        self.task = ray.remote(on_cluster).options(num_cpus=1, num_gpus=gpus, max_retries=TASK_RETRIES)
        self.job_ref = ray.put(job)
        self.window = max(4, int(IN_FLIGHT_PER_CPU * ray.cluster_resources().get("CPU", 1)))
        self.pending: dict = {}
        self.next = 0

    def _fill(self) -> None:
        while len(self.pending) < self.window and self.next < len(self.items):
            item = self.items[self.next]
            self.pending[self.task.remote(self.job_ref, item)] = item
            self.next += 1

    def _outcome(self, ref, item: Item) -> Outcome:
        ray = self.ray
        try:
            return ray.get(ref)
        except ray.exceptions.RayTaskError as exc:
            cause = exc.cause if isinstance(exc.cause, SpeechInpaintError) else None
            if cause is not None:  # the job's own refusal (prepare: a bad checkpoint): the batch stops
                raise cause from None
            raise
        except ray.exceptions.RayError as exc:  # its worker or node died more often than the retries
            return Outcome(item.input, item.output, "failed", f"{item.name}: lost on the cluster "
                           f"({str(exc).splitlines()[0]})", name=item.name)

    def outcomes(self):
        self._fill()
        while self.pending:
            ready, _ = self.ray.wait(list(self.pending), num_returns=1)
            for ref in ready:
                item = self.pending.pop(ref)
                yield self._outcome(ref, item)
            self._fill()

    def stop(self) -> list[Outcome]:
        """Cancel the files in flight (a cancelled task removes its temporary file) and return those that
        finished before the cancellation reached them."""
        for ref in self.pending:
            self.ray.cancel(ref)
        done = []
        for ref, item in self.pending.items():
            try:
                outcome = self.ray.get(ref, timeout=30)
            except Exception:  # cancelled, or lost: not finished, so not recorded
                continue
            done.append(outcome)
        return done

    def close(self) -> None:
        self.ray.shutdown()


def _call(init, fn, args: tuple):
    init()
    return fn(*args)


def map_calls(address: str, fn, calls: list[tuple], paths: list[str], init, on_result) -> list:
    """[fn(*c) for c in calls] as Ray tasks, each worker set up by init() (evaluate --ray), in input
    order; a SpeechInpaintError (or a call lost more often than the retries) in its call's place.
    `paths` are checked on every node first; on_result() is called as each call finishes."""
    ray = connect(address)
    try:
        check_shared(ray, paths, None)
        task = ray.remote(_call).options(num_cpus=1, max_retries=TASK_RETRIES)
        pending = {task.remote(init, fn, c): i for i, c in enumerate(calls)}
        results: list = [None] * len(calls)
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1)
            i = pending.pop(ready[0])
            try:
                results[i] = ray.get(ready[0])
            except ray.exceptions.RayTaskError as exc:
                if not isinstance(exc.cause, SpeechInpaintError):
                    raise
                results[i] = exc.cause
            except ray.exceptions.RayError as exc:
                results[i] = SpeechInpaintError(f"lost on the cluster ({str(exc).splitlines()[0]})")
            on_result()
        return results
    finally:
        ray.shutdown()


class LoopbackCluster:
    """A Ray cluster of several nodes on this machine, joined over 127.0.0.1: the README's way to try
    `--ray` before trusting a real cluster, and what the tests and benchmarks/batch.py run on.

    Each node is a `ray start --block` process with its own temporary folder, in its own process group,
    and is stopped by that group, never by `ray stop` (which stops every Ray process of the user on the
    machine). `env` adds to the nodes' environment (their workers must import this package)."""

    START_SECONDS = 120.0  # a node start on a starved shared CPU; 3-5 s on an idle one

    def __init__(self, root: Path, env: dict[str, str] | None = None):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.root, self.address = Path(root), f"127.0.0.1:{self.port}"
        self.env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", **(env or {})}
        self.ray = str(Path(sys.executable).parent / "ray")
        self.nodes: list[subprocess.Popen] = []

    def start(self, name: str, cpus: int = 1, prefix: tuple[str, ...] = ()) -> subprocess.Popen:
        """Start a node (the first is the head) with `cpus` CPUs, its command run after `prefix` (e.g. in
        another namespace); returns once the cluster counts it."""
        args = [self.ray, "start", "--block", "--node-ip-address", "127.0.0.1", "--num-cpus", str(cpus),
                "--temp-dir", str(self.root / name), "--disable-usage-stats"]
        args += (["--address", self.address] if self.nodes else
                 ["--head", "--port", str(self.port), "--include-dashboard", "false"])
        before = self.count()
        with open(self.root / f"{name}.log", "w") as log:
            node = subprocess.Popen([*prefix, *args], env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                    start_new_session=True)
        self.nodes.append(node)
        deadline = time.monotonic() + self.START_SECONDS
        while self.count() <= before:
            if node.poll() is not None or time.monotonic() > deadline:
                self.close()
                raise SpeechInpaintError(f"Ray node {name} did not start (see {self.root / name}.log)")
            time.sleep(0.5)
        return node

    def count(self) -> int:
        """Alive nodes, as `ray status` lists them (0 while there is no head)."""
        if not self.nodes:
            return 0
        status = subprocess.run([self.ray, "status", "--address", self.address], env=self.env, capture_output=True,
                                text=True, timeout=60)
        active = status.stdout.split("Active:")[-1].split("Pending:")[0] if status.returncode == 0 else ""
        return sum(line.strip().startswith("1 node_") for line in active.splitlines())

    def stop(self, node: subprocess.Popen, hard: bool = False) -> None:
        """A node's whole process group: killed at once (hard: as a node dies) or after 5 s of SIGTERM."""
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
        for node in reversed(self.nodes):  # the workers first, the head last
            self.stop(node)
        self.nodes.clear()
