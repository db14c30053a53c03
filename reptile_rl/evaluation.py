"""Adaptation curves on held-out tasks, MAML's protocol (Finn et al. 2017, section 5.3).

For ``N`` tasks of the family's *test* split (fixed by ``evaluation.seed``) and for every
initialisation:

- update 0: the mean return of ``episodes`` episodes from the initialisation;
- then ``updates`` learner updates, each on ``episodes`` fresh episodes, the return measured after
  each (the next update's rollout, and a final measurement rollout after the last).

Initialisations: **meta** (the run's meta-policy), **pretrained** (multi-task training), **random**
(a fresh policy of the same architecture, one per task) and **oracle** (multi-task training that
observes the task; measured without adaptation, a reference line). Every initialisation sees the
same tasks with the same adaptation seeds (common random numbers), so differences between
curves are not sampling noise of the tasks.
"""

from __future__ import annotations

import dataclasses
import math

from reptile_rl import checkpoint
from reptile_rl.config import Config
from reptile_rl.envs.base import Task
from reptile_rl.families import family_task_type
from reptile_rl.learners import AdaptJob, initial_parameters
from reptile_rl.metrics import METRICS, RETURN, Metric
from reptile_rl.parallel import Backend, LearnerSpec
from reptile_rl.params import Params
from reptile_rl.policies import PolicyFile, check_compatible
from reptile_rl.seeding import Stream, derive_seed
from reptile_rl.stats import Summary, summarize

INIT_NAMES = ("meta", "pretrained", "random", "oracle")
"""Initialisations ``evaluate`` knows, in report order."""


Curves = dict[str, list[list[float]]]
"""``curves[init][task index][update]``: one metric's values (the oracle has update 0 only)."""


@dataclasses.dataclass
class Evaluation:
    """Every metric of every initialisation on every task after every update.

    Attributes:
        config: The configuration evaluated (its ``evaluation`` section is the protocol).
        tasks: The held-out tasks.
        curves: Per metric name (:data:`~reptile_rl.metrics.METRICS`), its :data:`Curves`,
            for the metrics measured: the returns always, success rates only for families
            whose env reports success (SB3's ``info["is_success"]``).
        rollout_size: Env steps of one update's rollout.
    """

    config: Config
    tasks: list[Task]
    curves: dict[str, Curves]
    rollout_size: int

    @property
    def returns(self) -> Curves:
        """The headline metric's curves: the stochastic policy's returns (MAML's measure)."""
        return self.curves.get(RETURN.name, {})

    def measured(self) -> list[Metric]:
        """The metrics this evaluation holds, in :data:`~reptile_rl.metrics.METRICS`' order."""
        return [metric for metric in METRICS if self.curves.get(metric.name)]

    def describe_tasks(self) -> str:
        """``"40 held-out tasks"``, or what else they are (``--task-file`` tasks may be train).

        Tasks of the test split are held out; a family whose splits are not disjoint (a few
        tasks, e.g. two directions) holds none out, as in MAML's evaluation.
        """
        count = len(self.tasks)
        noun = "task" if count == 1 else "tasks"
        training = sum(not task.in_split("test") for task in self.tasks)
        if training:
            return f"{count} {noun} ({training} of the train split, not held out)"
        return f"{count} held-out {noun}"

    def summaries(self, metric: Metric = RETURN) -> dict[str, list[Summary]]:
        """A metric's mean and 95% confidence interval over tasks, per init and update.

        Empty where the metric was not measured.
        """
        return _summarize_curves(self.curves.get(metric.name, {}))

    def normalized_scores(self) -> dict[str, list[float]] | None:
        """``(R - R_pretrained@0) / (R_oracle - R_pretrained@0)`` per init and update.

        ``None`` unless both the pretrained and the oracle inits were evaluated.
        """
        summaries = self.summaries()
        if "pretrained" not in summaries or "oracle" not in summaries:
            return None
        floor, ceiling = summaries["pretrained"][0].mean, summaries["oracle"][0].mean
        if math.isclose(floor, ceiling):
            return None
        return {
            init: [(s.mean - floor) / (ceiling - floor) for s in curve]
            for init, curve in summaries.items()
            if init != "oracle"
        }

    def groups(self) -> list[str]:
        """The tasks' groups (:attr:`~reptile_rl.envs.Task.group`) in first-seen order.

        Empty unless the tasks fall into two or more groups.
        """
        groups = list(dict.fromkeys(task.group for task in self.tasks if task.group is not None))
        return groups if len(groups) > 1 else []

    def group_summaries(self, group: str, metric: Metric = RETURN) -> dict[str, list[Summary]]:
        """:meth:`summaries` over the tasks of one group only."""
        chosen = [i for i, task in enumerate(self.tasks) if task.group == group]
        per_init = self.curves.get(metric.name, {})
        return _summarize_curves(
            {init: [per_task[i] for i in chosen] for init, per_task in per_init.items()}
        )

    def paired_differences(self) -> dict[str, list[Summary]]:
        """Meta minus each other adapted init, task by task, per update, with 95% CIs.

        Every init is evaluated on the same tasks with the same adaptation seeds, so the
        per-task differences remove the spread between tasks that dominates the separate
        intervals: an interval above zero means meta is better on these tasks.
        """
        if "meta" not in self.returns:
            return {}
        meta = self.returns["meta"]
        differences = {}
        for init, per_task in self.returns.items():
            if init in ("meta", "oracle"):
                continue
            updates = range(len(per_task[0]))
            differences[init] = [
                summarize([m[k] - o[k] for m, o in zip(meta, per_task, strict=True)])
                for k in updates
            ]
        return differences


def _summarize_curves(per_init: Curves) -> dict[str, list[Summary]]:
    """``per_init[init][task][update]`` -> per init, a summary over tasks of each update."""
    result = {}
    for init, per_task in per_init.items():
        updates = len(per_task[0])
        result[init] = [summarize([curve[k] for curve in per_task]) for k in range(updates)]
    return result


PROTOCOLS = {
    "toolkit": "",
    "metaworld": "Protocol: Meta-World's meta-learning evaluation "
    "(`metaworld.evaluation.metalearning_evaluation`, Meta-World 3.1.1: adaptation_steps=1, "
    "adaptation_episodes=10, evaluation_episodes=3, an episode a success if the success flag "
    "is set at any step): 1 update of 10 episodes on each test goal, in Meta-World's order; "
    "the mean-action rows after 1 update are its evaluation episodes (the adapted policy "
    "acting deterministically, on the goal's fixed start).",
}
"""What each ``evaluation.protocol`` is, for the reports (the toolkit's needs no note)."""


def held_out_tasks(config: Config) -> list[Task]:
    """The evaluation's held-out tasks: ``evaluation.tasks`` of the test split.

    Drawn by ``evaluation.seed`` (the toolkit's protocol); under Meta-World's protocol the
    first ``evaluation.tasks`` test goals of each test skill in Meta-World's order (``evaluate
    --protocol metaworld``: all 50).
    """
    task_type = family_task_type(config.env.id)
    if config.evaluation.protocol == "metaworld":
        goals: list[Task] = task_type.test_goals(config.evaluation.tasks)  # type: ignore[attr-defined]
        return goals
    seed = derive_seed(config.evaluation.seed, Stream.EVAL_TASKS)
    return task_type.sample(config.evaluation.tasks, seed=seed, split="test")


def check_policies(
    config: Config, policies: dict[str, PolicyFile], sources: dict[str, str]
) -> None:
    """Raise ``CheckpointError`` unless every policy fits ``config``'s env and architecture."""
    expected = {
        oracle: initial_parameters(config, 0, oracle=oracle)
        for oracle in {p.oracle for p in policies.values()}
    }
    for init, policy in policies.items():
        source = sources.get(init, init)
        if policy.config.env.id != config.env.id:
            raise checkpoint.CheckpointError(
                f"{source}: a policy for {policy.config.env.id}, not {config.env.id}"
            )
        if policy.oracle != (init == "oracle"):
            kind = "an oracle" if policy.oracle else "a non-oracle"
            raise checkpoint.CheckpointError(f"{source}: {kind} policy given as the {init} init")
        check_compatible(expected[policy.oracle], policy.params, source)


def evaluate(
    config: Config,
    policies: dict[str, PolicyFile | None],
    backend: Backend,
    tasks: list[Task] | None = None,
) -> Evaluation:
    """Measure adaptation curves for each initialisation on the held-out tasks.

    Args:
        config: Configuration of the meta-policy's run; its ``evaluation`` section sets the
            protocol and ``evaluation.inner`` the adaptation's learner settings.
        policies: Init name -> its policy; ``"random"`` maps to ``None`` (drawn per task).
        backend: Where adaptations run.
        tasks: Tasks to use instead of the held-out test-split draw.

    Returns:
        The returns (stochastic and mean-action) of every init on every task after every
        update, and the success rates where the family's env reports success.
    """
    tasks = held_out_tasks(config) if tasks is None else tasks
    inner = config.evaluation_inner()
    updates = config.evaluation.updates
    seeds = [
        derive_seed(config.evaluation.seed, Stream.EVAL_ADAPTATION, i) for i in range(len(tasks))
    ]
    curves: dict[str, Curves] = {metric.name: {} for metric in METRICS}
    for init in INIT_NAMES:
        if init not in policies:
            continue
        oracle = init == "oracle"
        theta: Params | list[Params]
        policy = policies[init]
        if policy is None:
            theta = [
                initial_parameters(
                    config, derive_seed(config.evaluation.seed, Stream.EVAL_RANDOM_INIT, i)
                )
                for i in range(len(tasks))
            ]
        else:
            theta = policy.params
        # The oracle is a reference line: measured, never adapted.
        jobs = [
            AdaptJob(
                task,
                seed,
                0 if oracle else updates,
                measure_final=True,
                measure_mean_action=True,
                # A meta-policy with learned inner rates adapts with them.
                inner_log_rates=None if policy is None else policy.inner_log_rates,
            )
            for task, seed in zip(tasks, seeds, strict=True)
        ]
        results = backend.adapt(LearnerSpec(config, oracle=oracle, inner=inner), theta, jobs)
        failed = [r.error for r in results if r.error is not None]
        if failed:
            raise RuntimeError(f"{init}: {len(failed)} adaptation(s) failed: {failed[0]}")
        for metric in METRICS:
            values = [getattr(result, metric.field) for result in results]
            # Only where every adaptation measured it: an env either reports success or not.
            if metric is RETURN or (values and all(values)):
                curves[metric.name][init] = values
    return Evaluation(
        config,
        tasks,
        {name: per_init for name, per_init in curves.items() if per_init},
        inner.rollout_size(config.horizon()),
    )
