"""What an adaptation measures, as data: one :class:`Metric` entry per measured quantity.

Every output loops over :data:`METRICS`: ``evaluate``'s CSV columns, JSON summaries, Markdown
tables and figure panels, and ``adapt``'s CSV and printed table. A new metric is one entry here
and the learner that measures it (a field of :class:`~reptile_rl.learners.AdaptResult`, filled
per update).
"""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class Metric:
    """One quantity measured after every update of an adaptation.

    Attributes:
        name: Its CSV column and its key in an evaluation's curves.
        field: The :class:`~reptile_rl.learners.AdaptResult` attribute holding it per update
            (empty where the adaptation did not measure it).
        json_key: The key of its summaries in ``adaptation.json``.
        caption: The caption of its Markdown table; ``{algorithm}``, ``{episodes}`` and
            ``{seed}`` are filled in from the evaluation's protocol.
        heading: Its column heading in ``adapt``'s printed table.
        always: A column of every CSV, empty where not measured; else only where measured.
        panel: The title of a figure panel of its own (``None``: no panel; the headline
            metric has the figure's first panels).
        axis: That panel's y-axis label (``{episodes}`` filled in) and its bounds.
    """

    name: str
    field: str
    json_key: str
    caption: str
    heading: str
    always: bool = False
    panel: str | None = None
    axis: tuple[str, tuple[float, float] | None] = ("", None)


RETURN = Metric(
    "return",
    "returns",
    "inits",
    "Mean return over tasks [95% CI] after k {algorithm} updates of {episodes} episodes each "
    "(evaluation seed {seed}): the stochastic policy's return, MAML's measure.",
    "return (stochastic)",
    always=True,
)
"""The headline metric: the stochastic policy's mean return (MAML's measure)."""

METRICS = (
    RETURN,
    Metric(
        "mean_action_return",
        "mean_action_returns",
        "inits_mean_action",
        "Mean-action return (the policy acting on its mean, as a deployed policy usually does; "
        "one episode per env on envs of their own) [95% CI]:",
        "return (mean action)",
        always=True,
    ),
    Metric(
        "success_rate",
        "success_rates",
        "inits_success",
        "Success rate over tasks [95% CI; a t-interval, which can pass 0 and 1]: the fraction "
        "of the stochastic policy's episodes above that succeeded (the env's is_success at "
        "their end).",
        "success (stochastic)",
        panel="success rate, every initialisation",
        axis=("success rate ({episodes} episodes, stochastic)", (0.0, 1.0)),
    ),
    Metric(
        "mean_action_success_rate",
        "mean_action_success_rates",
        "inits_mean_action_success",
        "Mean-action success rate (the mean-action episodes above) [95% CI]:",
        "success (mean action)",
    ),
)
"""Every metric, in the order of columns, tables and panels."""
