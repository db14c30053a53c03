"""Where inner loops run: in-process (serial) or on Ray actors, behind one interface.

Both backends return bit-identical results for the same inputs: every adaptation is seeded by
its job, runs with one torch thread, and results come back in job order.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib.util
import itertools
import logging
import os
import socket
import sys
from collections.abc import Sequence
from typing import Any, Protocol

from reptile_rl.config import Config, ConfigError, InnerConfig, ParallelConfig, config_to_yaml
from reptile_rl.learners import AdaptJob, AdaptResult, Learner, adapt_all, make_learner
from reptile_rl.params import Params

logger = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class LearnerSpec:
    """What a worker's learner is built from (:func:`~reptile_rl.learners.make_learner`).

    Attributes:
        config: The run configuration.
        oracle: Observe the task (oracle baseline).
        inner: Settings replacing ``config.inner`` (e.g. for evaluation).
    """

    config: Config
    oracle: bool = False
    inner: InnerConfig | None = None

    @property
    def lockstep(self) -> bool:
        """Whether a worker adapts its jobs together (``inner.engine: lockstep``)."""
        return getattr(self.inner or self.config.inner, "engine", "sb3") == "lockstep"

    @functools.cached_property
    def key(self) -> str:
        """A string that identifies equal specs (workers cache one learner per key)."""
        inner = "" if self.inner is None else repr(self.inner.model_dump())
        return f"{config_to_yaml(self.config)}|{self.oracle}|{inner}"


class _Learners:
    """A worker's cache of learners, one per spec."""

    def __init__(self) -> None:
        self._learners: dict[str, Learner] = {}

    def get(self, spec: LearnerSpec) -> Learner:
        key = spec.key
        if key not in self._learners:
            self._learners[key] = make_learner(spec.config, oracle=spec.oracle, inner=spec.inner)
        return self._learners[key]

    def adapt(
        self,
        spec: LearnerSpec,
        theta: Params | Sequence[Params],
        jobs: Sequence[AdaptJob],
        optimizer_state: Params | None,
    ) -> list[AdaptResult]:
        """Adapt ``theta`` (one, or one per job) to each job: a failed job gets its failure."""
        learner = self.get(spec)  # a failure to build the learner is a set-up error: let it raise
        return adapt_all(learner, _per_job(theta, len(jobs)), jobs, optimizer_state)

    def pid(self) -> int:
        """The worker's process id (to inspect or kill it)."""
        return os.getpid()

    def close(self) -> None:
        for learner in self._learners.values():
            learner.close()
        self._learners.clear()


class Backend(Protocol):
    """Runs adaptations; results are returned in job order."""

    workers: int

    def adapt(
        self,
        spec: LearnerSpec,
        theta: Params | Sequence[Params],
        jobs: Sequence[AdaptJob],
        optimizer_state: Params | None = None,
    ) -> list[AdaptResult]:
        """Adapt ``theta`` (one for all jobs, or one per job) to each job's task."""
        ...

    def close(self) -> None:
        """Release workers."""
        ...


def _per_job(theta: Params | Sequence[Params], count: int) -> list[Params]:
    if isinstance(theta, dict):
        return [theta] * count
    thetas = list(theta)
    if len(thetas) != count:
        raise ValueError(f"got {len(thetas)} parameter sets for {count} jobs")
    return thetas


def _shares(count: int, workers: int) -> list[tuple[int, int]]:
    """``[start, stop)`` of each worker's contiguous share of ``count`` jobs (sizes within one)."""
    bounds = [count * worker // workers for worker in range(workers + 1)]
    return list(itertools.pairwise(bounds))


class SerialBackend:
    """Runs every adaptation in this process, one after the other (one torch thread)."""

    workers = 1

    def __init__(self) -> None:
        self._learners = _Learners()

    def adapt(
        self,
        spec: LearnerSpec,
        theta: Params | Sequence[Params],
        jobs: Sequence[AdaptJob],
        optimizer_state: Params | None = None,
    ) -> list[AdaptResult]:
        """Adapt in job order (on the lockstep engine: all together)."""
        return self._learners.adapt(spec, theta, jobs, optimizer_state)

    def close(self) -> None:
        """Close the environments."""
        self._learners.close()


class RayBackend:
    """Runs adaptations on Ray actors, each with its own reused learners and envs.

    Parameters go to the object store once per call (``ray.put``); results come back as NumPy
    arrays. Actors restart when their process dies and Ray re-runs the interrupted call
    (``max_restarts=-1``, ``max_task_retries=-1``); since every job is seeded, a re-run gives
    the same result.

    On a local Ray the actors get this process's import path (``PYTHONPATH``), so that a task
    family in the user's own module (``env.id: "my_module:My/Family-v0"``) imports there too;
    on a cluster that module must be installed on every node.

    Args:
        workers: Number of actors (one CPU each).
        address: ``None`` starts a local Ray with ``num_cpus=workers``; ``"auto"`` or a
            ``ray://`` URL joins an existing cluster.
    """

    def __init__(self, workers: int, address: str | None = None) -> None:
        _quiet_token_notice()
        if address is not None:
            _check_reachable(address)
            _use_token_if_available()
        import ray

        if not ray.is_initialized():
            init_args: dict[str, Any] = {
                "include_dashboard": False,
                "logging_level": logging.WARNING,
                "log_to_driver": False,
            }
            if address is None:
                init_args["num_cpus"] = workers
            else:
                init_args["address"] = address
            try:
                ray.init(**init_args)
            except (ConnectionError, RuntimeError, ValueError) as error:
                if address is None:
                    raise
                reason = _first_line(error)
                raise ClusterError(
                    f"parallel.address: cannot join the Ray cluster at {address}: {reason}; "
                    f"{_CLUSTER_HINT}"
                ) from None
        self._ray = ray
        options: dict[str, Any] = {"num_cpus": 1, "max_restarts": -1, "max_task_retries": -1}
        if address is None:
            path = [os.path.abspath(entry or os.curdir) for entry in sys.path]
            options["runtime_env"] = {"env_vars": {"PYTHONPATH": os.pathsep.join(path)}}
        actor_class: Any = ray.remote(**options)(_Learners)
        self.workers = workers
        self.actors: list[Any] = [actor_class.remote() for _ in range(workers)]

    def adapt(
        self,
        spec: LearnerSpec,
        theta: Params | Sequence[Params],
        jobs: Sequence[AdaptJob],
        optimizer_state: Params | None = None,
    ) -> list[AdaptResult]:
        """Spread jobs over the actors, an idle actor taking the next job.

        On the lockstep engine each actor takes a contiguous share of the jobs at once (sizes
        differing by at most one) and adapts them together.
        """
        ray = self._ray
        spec_ref = ray.put(spec)
        state_ref = ray.put(optimizer_state)
        calls: list[tuple[range, Any]]  # (job indices, thetas: one ref or a list)
        if spec.lockstep:
            thetas = _per_job(theta, len(jobs))
            shares = _shares(len(jobs), len(self.actors))
            calls = [(range(start, stop), thetas[start:stop]) for start, stop in shares]
        else:
            refs = (
                [ray.put(theta)] * len(jobs)
                if isinstance(theta, dict)
                else [ray.put(t) for t in _per_job(theta, len(jobs))]
            )
            calls = [(range(i, i + 1), refs[i]) for i in range(len(jobs))]
        pending: dict[Any, tuple[range, Any]] = {}  # result ref -> (job indices, actor)
        results: list[AdaptResult | None] = [None] * len(jobs)
        idle = list(self.actors)
        waiting = [call for call in calls if call[0]]
        while waiting or pending:
            while idle and waiting:
                indices, thetas_arg = waiting.pop(0)
                actor = idle.pop(0)
                share = list(jobs[indices.start : indices.stop])
                ref = actor.adapt.remote(spec_ref, thetas_arg, share, state_ref)
                pending[ref] = (indices, actor)
            ready, _ = ray.wait(list(pending), num_returns=1, timeout=_HEALTH_CHECK_SECONDS)
            if not ready:
                self._check_cluster()
                continue
            (done,) = ready
            indices, actor = pending.pop(done)
            try:
                for index, result in zip(indices, ray.get(done), strict=True):
                    results[index] = result
            except ray.exceptions.RayError as error:
                # Tasks catch their own failures (adapt_all): this is Ray's, not a task's.
                reason = _first_line(error)
                message = f"the Ray cluster failed: {type(error).__name__}: {reason}"
                raise ClusterLostError(message) from error
            idle.append(actor)
        return [result for result in results if result is not None]

    def _check_cluster(self) -> None:
        """Raise :class:`ClusterLostError` if no Ray node is alive any more.

        Ray restarts actors and re-runs their calls on another node, so a lost node is
        survived; with no node left it would wait for one forever.
        """
        try:
            nodes: list[dict[str, Any]] = self._ray.nodes()  # type: ignore[no-untyped-call]
            alive = [node for node in nodes if node.get("Alive")]
        except Exception as error:  # the head (GCS) itself does not answer
            raise ClusterLostError(f"the Ray cluster's head does not answer: {error}") from error
        if not alive:
            raise ClusterLostError("the Ray cluster has no live node left (its raylets are gone)")

    def close(self) -> None:
        """Stop the actors (Ray itself stays up for the process)."""
        for actor in self.actors:
            try:
                self._ray.kill(actor)
            except self._ray.exceptions.RayError:  # the cluster is gone: nothing to stop
                logger.warning("could not stop a Ray actor; the cluster may be gone")
        self.actors = []


_HEALTH_CHECK_SECONDS = 10.0
"""How long to wait for a result before checking that the cluster still has a live node."""

_CLUSTER_HINT = (
    "start the head with `ray start --head --port=6379` and give its address (host:6379, or "
    "auto on the head), or check the address and firewall"
)


class ClusterError(ConfigError):
    """The configured Ray cluster cannot be reached or joined (before any work starts)."""


class ClusterLostError(RuntimeError):
    """The Ray cluster failed during the run (a node, its raylet or the head is gone)."""


def _first_line(error: BaseException) -> str:
    """The first line of an error's message (Ray's run to many), or its type's name."""
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def _check_reachable(address: str, timeout: float = 5.0) -> None:
    """Fail fast, with the likely fix, if nothing answers at a ``host:port`` address.

    ``auto`` (the cluster on this machine) is left to Ray.
    """
    if address == "auto":
        return
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        raise ClusterError(
            f"parallel.address: expected auto, host:port or ray://host:port, got {address!r}"
        )
    try:
        socket.create_connection((host, int(port)), timeout=timeout).close()
    except OSError as error:
        reason = error.strerror or type(error).__name__
        raise ClusterError(
            f"parallel.address: nothing answers at {address} ({reason}); {_CLUSTER_HINT}"
        ) from None


def _use_token_if_available() -> None:
    """Authenticate to a cluster by an explicit address as Ray does for ``auto``.

    A head started by ``ray start`` uses token authentication when a token exists
    (``~/.ray/auth_token``, as on the head node itself); Ray's driver enables it on its own only
    for ``auto``, so a driver given the head's address was refused. This calls the
    step Ray takes for ``auto`` (checked against Ray 2.60; it also refreshes Ray's cached
    configuration, which setting ``RAY_AUTH_MODE`` after Ray's import would not). On another
    machine, put the head's token (``ray get-auth-token`` there) in ``~/.ray/auth_token`` or
    ``RAY_AUTH_TOKEN``.
    """
    try:
        from ray._private.authentication import authentication_token_setup
    except ImportError:  # a Ray without token authentication
        return
    authentication_token_setup.maybe_enable_token_auth_if_token_available(warn_if_disabled=False)


class _DropTokenNotice(logging.Filter):
    """Drops Ray's notice that the cluster uses token authentication (its default)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "Token authentication is enabled" not in record.getMessage()


def _quiet_token_notice() -> None:
    """Keep Ray's token-authentication notice off the progress bar."""
    ray_logger = logging.getLogger("ray._private.authentication.authentication_token_setup")
    if not any(isinstance(f, _DropTokenNotice) for f in ray_logger.filters):
        ray_logger.addFilter(_DropTokenNotice())


def ray_available() -> bool:
    """Whether the optional ``ray`` extra is installed."""
    return importlib.util.find_spec("ray") is not None


def resolve_backend(parallel: ParallelConfig) -> str:
    """Return ``"serial"`` or ``"ray"`` for a configuration, before any work starts.

    Raises:
        ConfigError: If Ray is asked for but not installed.
    """
    if parallel.backend == "serial":
        return "serial"
    if parallel.backend == "ray":
        if not ray_available():
            raise ConfigError(
                "parallel.backend: 'ray' needs the ray extra: pip install 'reptile-rl[ray]'"
            )
        return "ray"
    if parallel.workers > 1 or parallel.address is not None:
        if ray_available():
            return "ray"
        logger.warning("Ray is not installed; running %d workers serially", parallel.workers)
    return "serial"


def make_backend(parallel: ParallelConfig) -> Backend:
    """Create the backend a configuration asks for (see :func:`resolve_backend`)."""
    if resolve_backend(parallel) == "ray":
        return RayBackend(parallel.workers, parallel.address)
    return SerialBackend()
