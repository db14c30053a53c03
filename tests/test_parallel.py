"""Serial and Ray backends: identical results, and survival of a killed worker."""

import os
import signal
import threading
import time

import numpy as np
import pytest
from conftest import tiny_config

from reptile_rl import envs, parallel
from reptile_rl.config import ConfigError, load_config
from reptile_rl.learners import AdaptJob, initial_parameters
from reptile_rl.parallel import (
    LearnerSpec,
    RayBackend,
    SerialBackend,
    make_backend,
    resolve_backend,
)
from reptile_rl.trainer import Trainer

ray = pytest.importorskip("ray")


@pytest.fixture(scope="module")
def ray_cluster():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def same_results(a, b):
    assert len(a) == len(b)
    for x, y in zip(a, b, strict=True):
        assert x.returns == y.returns
        assert x.params.keys() == y.params.keys()
        assert all(np.array_equal(x.params[k], y.params[k]) for k in x.params)


def jobs_and_theta(config, count=4):
    tasks = envs.NavigationTask.sample(count, seed=3)
    jobs = [
        AdaptJob(task, seed=10 + i, updates=2, measure_final=True) for i, task in enumerate(tasks)
    ]
    return jobs, initial_parameters(config, 1)


def test_training_is_identical_on_serial_and_ray(ray_cluster, tmp_path):
    results = {}
    for backend, workers in (("serial", 1), ("ray", 2), ("ray", 1)):
        config = tiny_config(
            f"parallel.backend={backend}", f"parallel.workers={workers}", "outer.meta_batch_size=4"
        )
        results[backend, workers] = Trainer(config, tmp_path / f"{backend}{workers}").learn().theta
    reference = results["serial", 1]
    for key, theta in results.items():
        assert all(np.array_equal(theta[name], reference[name]) for name in reference), key


def test_ant_adaptation_is_identical_in_the_driver_and_a_ray_worker(ray_cluster):
    # AntDir's linear baseline fits 214 features: large enough for NumPy's BLAS to thread its
    # least squares, which gave the driver (two threads here) other bits than a Ray worker
    # (one) until the learner limited BLAS to one thread too.
    config = load_config("ant-dir", ["inner.n_envs=2", "inner.updates=1", "baseline.inner={}"])
    (task,) = envs.AntDirectionTask.sample(1, seed=5)
    jobs = [AdaptJob(task, seed=7, updates=1)]
    theta = initial_parameters(config, 1)
    backend = RayBackend(1)
    try:
        in_worker = backend.adapt(LearnerSpec(config), theta, jobs)
    finally:
        backend.close()
    same_results(in_worker, SerialBackend().adapt(LearnerSpec(config), theta, jobs))


def test_a_killed_worker_is_restarted_and_its_task_rerun(ray_cluster):
    config = tiny_config("inner.updates=3")
    jobs, theta = jobs_and_theta(config, count=6)
    expected = SerialBackend().adapt(LearnerSpec(config), theta, jobs)
    backend = RayBackend(2)
    try:
        backend.adapt(LearnerSpec(config), theta, jobs[:2])  # build the loops: jobs now run at once
        victim = ray.get(backend.actors[0].pid.remote())
        outcome = {}
        worker = threading.Thread(
            target=lambda: outcome.update(results=backend.adapt(LearnerSpec(config), theta, jobs))
        )
        worker.start()
        time.sleep(0.5)  # mid-iteration: the actors are adapting
        os.kill(victim, signal.SIGKILL)
        worker.join(timeout=300)
        assert not worker.is_alive()
        same_results(outcome["results"], expected)
        assert ray.get(backend.actors[0].pid.remote()) != victim  # restarted
    finally:
        backend.close()


def test_per_job_parameters(ray_cluster):
    config = tiny_config()
    jobs, _ = jobs_and_theta(config, count=3)
    thetas = [initial_parameters(config, seed) for seed in range(3)]
    backend = RayBackend(2)
    try:
        same_results(
            backend.adapt(LearnerSpec(config), thetas, jobs),
            SerialBackend().adapt(LearnerSpec(config), thetas, jobs),
        )
    finally:
        backend.close()


def test_backend_choice(monkeypatch):
    config = load_config("navigation")
    assert resolve_backend(config.parallel) == "ray"  # the preset asks for 2 workers
    one = load_config("navigation", ["parallel.workers=1"])
    assert resolve_backend(one.parallel) == "serial"
    assert isinstance(make_backend(one.parallel), SerialBackend)
    monkeypatch.setattr(parallel, "ray_available", lambda: False)
    assert resolve_backend(config.parallel) == "serial"  # auto falls back, with a warning
    explicit = load_config("navigation", ["parallel.backend=ray"])
    with pytest.raises(ConfigError, match=r"parallel\.backend: 'ray' needs the ray extra"):
        resolve_backend(explicit.parallel)
    with pytest.raises(ConfigError, match="needs the ray extra"):
        Trainer(explicit)
