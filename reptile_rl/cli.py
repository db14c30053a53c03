"""The ``reptile-rl`` command: config, train, pretrain, evaluate, adapt, export, plot, envs.

User errors (bad configuration, missing or corrupt files) print one line and exit with code 2;
nothing below this module parses arguments or prints for people.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import gymnasium as gym

from reptile_rl import __version__
from reptile_rl.adaptation import adapt
from reptile_rl.checkpoint import CheckpointError
from reptile_rl.config import (
    METAWORLD_PROTOCOL,
    ConfigError,
    config_to_yaml,
    iter_options,
    load_config,
    preset_names,
)
from reptile_rl.envs.metaworld import GOALS_PER_SPLIT
from reptile_rl.evaluation import evaluate
from reptile_rl.families import env_horizon, family_class
from reptile_rl.metrics import METRICS
from reptile_rl.parallel import make_backend
from reptile_rl.plotting import plot_training
from reptile_rl.policies import export_policy
from reptile_rl.pretrain import Pretrainer
from reptile_rl.report import write_outputs
from reptile_rl.reptile import TrainingError
from reptile_rl.rundir import RunDir, adaptation_files, ensure_new_folder
from reptile_rl.sources import (
    base_config,
    config_with_overrides,
    load_meta_policy,
    resolve_evaluation,
)
from reptile_rl.trainer import StorageError, Trainer

USER_ERROR = 2


class UserError(Exception):
    """An error in what the user asked for; reported in one line with exit code 2."""


def _options_epilog() -> str:
    lines = [
        "configuration keys for --set (built-in default: help). A preset sets many of them "
        "to other values: `reptile-rl config PRESET` prints the values a run of it uses.",
    ]
    for key, default, help_text in iter_options():
        lines.append(f"  {key} = {default!r}: {help_text}")
    return "\n".join(lines)


def _add_set_argument(parser: argparse.ArgumentParser, help_text: str) -> None:
    """``--set KEY=VALUE``, repeatable: overrides of a configuration."""
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help=help_text,
    )


def _add_config_arguments(parser: argparse.ArgumentParser, preset_required: bool = True) -> None:
    parser.add_argument(
        "preset",
        nargs=None if preset_required else "?",
        metavar="PRESET_OR_YAML",
        help=f"a preset ({', '.join(preset_names())}) or a YAML file",
    )
    _add_set_argument(
        parser,
        "override a configuration key, e.g. inner.learning_rate=0.01",
    )
    parser.add_argument("--seed", type=int, default=None, help="run seed (overrides the preset)")
    parser.add_argument("--out", type=Path, default=None, help="output directory")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")


def _config(args: argparse.Namespace) -> None:
    print(config_to_yaml(load_config(args.preset, args.overrides, args.seed)), end="")


def _train(args: argparse.Namespace) -> None:
    if args.resume is not None:
        if args.preset is not None or args.overrides or args.seed is not None or args.out:
            raise UserError(
                "--resume continues a run with its saved configuration; "
                "give no PRESET_OR_YAML, --set, --seed or --out with it"
            )
        trainer = Trainer.resume(args.resume, not args.no_progress, args.iterations)
        if trainer.finished():
            iterations = trainer.config.outer.iterations
            print(
                f"run {trainer.run_dir} is finished ({iterations} iterations); nothing to do. "
                f"To train on: reptile-rl train --resume {trainer.run_dir} --iterations N "
                f"(N > {iterations})"
            )
            return
    else:
        if args.preset is None:
            raise UserError("give a PRESET_OR_YAML to train, or --resume RUN_DIR")
        if args.iterations is not None:
            raise UserError(
                "--iterations extends a run with --resume; for a new run use "
                "--set outer.iterations=N"
            )
        config = load_config(args.preset, args.overrides, args.seed)
        trainer = Trainer(config, args.out, progress=not args.no_progress)
    trainer.learn()
    print(f"run directory: {trainer.run_dir}")


def _pretrain(args: argparse.Namespace) -> None:
    config = load_config(args.preset, args.overrides, args.seed)
    trainer = Pretrainer(
        config, oracle=args.oracle, run_dir=args.out, progress=not args.no_progress
    )
    trainer.learn()
    print(f"run directory: {trainer.run_dir}")


def _evaluate(args: argparse.Namespace) -> None:
    overrides = list(args.overrides)
    if args.protocol == "metaworld":
        for key in ("updates", "episodes"):
            if getattr(args, key) is not None:
                raise ConfigError(f"--{key}: Meta-World's protocol fixes it, leave it out")
        fixed = {**METAWORLD_PROTOCOL, "tasks": GOALS_PER_SPLIT}
        overrides += [f"evaluation.{key}={value}" for key, value in fixed.items()]
        overrides.append("evaluation.protocol=metaworld")
    for key in ("tasks", "updates", "episodes", "seed"):
        if getattr(args, key) is not None:
            overrides.append(f"evaluation.{key}={getattr(args, key)}")
    plan = resolve_evaluation(
        args.source, args.inits, args.pretrained, args.oracle, overrides, args.task_file
    )
    default = plan.default_out
    if args.protocol == "metaworld":
        default = default.with_name(f"{default.name}-metaworld")
    out_dir = args.out or default
    backend = make_backend(plan.config.parallel)
    try:
        evaluation = evaluate(plan.config, plan.policies, backend, plan.tasks)
    finally:
        backend.close()
    for path in write_outputs(evaluation, out_dir, plan.sources):
        print(path)
    print(adaptation_files(out_dir)[2].read_text())


def _adapt(args: argparse.Namespace) -> None:
    out = args.out
    if out is not None:
        ensure_new_folder(out)  # before the work, not only when saving
    adaptation = adapt(
        args.source, args.task, args.updates, args.episodes, args.seed, args.overrides
    )
    out = out or RunDir.default(adaptation.policy.config, "adapted").path
    for path in adaptation.save(out):
        print(path)
    print(f"task {adaptation.task.to_json()}")
    metrics = [m for m in METRICS if m.name in adaptation.columns()]
    print("  ".join(["update", "env_steps", *(m.heading for m in metrics)]))
    for row in adaptation.rows():
        cells = [f"{row['update']:>6}", f"{row['env_steps']:>9}"]
        cells += [f"{_cell(row[m.name]):>{len(m.heading)}}" for m in metrics]
        print("  ".join(cells))


def _cell(value: float | str) -> str:
    """A metric's printed value (``""`` where it was not measured)."""
    return value if isinstance(value, str) else f"{value:.2f}"


def _export(args: argparse.Namespace) -> None:
    if args.out.exists():
        raise UserError(f"--out: {args.out} already exists; choose a new file")
    if args.out.suffix != ".zip":
        raise UserError(f"--out: expected a .zip file name, got {args.out}")
    policy = load_meta_policy(args.source, base_config(args.overrides))
    config = config_with_overrides(policy, args.overrides)
    export_policy(policy, args.out, config, config.evaluation_inner())
    print(args.out)


def _plot(args: argparse.Namespace) -> None:
    run = RunDir(args.run_dir)
    if not run.progress_file.is_file():
        raise UserError(f"{args.run_dir}: no progress.csv (not a run directory?)")
    out = args.out or run.training_plot
    try:
        plot_training(run.progress_file, out)
    except (ValueError, KeyError) as error:
        raise UserError(str(error)) from None
    print(out)


def _envs(args: argparse.Namespace) -> None:
    for env_id in sorted(i for i in gym.registry if i.startswith("ReptileRL/")):
        family = family_class(env_id)
        task_type = family.task_type
        splits = "" if task_type.disjoint_splits else " (train and test: the whole family)"
        kwargs = gym.registry[env_id].kwargs
        print(env_id + "".join(f" ({k}={v})" for k, v in kwargs.items()))
        print(f"  tasks:   {task_type.__name__}: {task_type.describe_space()}{splits}")
        print(f"  horizon: {env_horizon(env_id)} steps")
        print(f"  metric:  {family.metric}")
        print(f"  source:  {family.source or '(not given)'}")
        if (reason := family.unavailable_reason()) is not None:
            print(f"  needs:   {reason}")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``reptile-rl``."""
    parser = argparse.ArgumentParser(prog="reptile-rl", description=__doc__.splitlines()[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress details")
    parser.add_argument("--version", action="version", version=f"reptile-rl {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

    config = commands.add_parser(
        "config",
        help="print the resolved configuration of a preset or YAML file, as YAML",
        epilog=_options_epilog(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    config.add_argument(
        "preset", metavar="PRESET_OR_YAML", help=f"a preset ({', '.join(preset_names())}) or YAML"
    )
    _add_set_argument(config, "override a configuration key, e.g. inner.learning_rate=0.01")
    config.add_argument("--seed", type=int, default=None, help="run seed (overrides the preset)")
    config.set_defaults(handler=_config)

    train = commands.add_parser(
        "train",
        help="meta-train a policy initialisation with Reptile",
        epilog=_options_epilog(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_config_arguments(train, preset_required=False)
    train.add_argument(
        "--resume",
        type=Path,
        default=None,
        metavar="RUN_DIR",
        help="continue a run from its latest checkpoint",
    )
    train.add_argument(
        "--iterations",
        type=int,
        default=None,
        metavar="N",
        help="with --resume: extend the run to N meta-iterations in all; the new iterations "
        "anneal eps as a run of N iterations would at those iterations",
    )
    train.set_defaults(handler=_train)

    pretrain = commands.add_parser(
        "pretrain",
        help="train a multi-task baseline (pretrained, or --oracle) on the train split",
        epilog=_options_epilog(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_config_arguments(pretrain)
    pretrain.add_argument(
        "--oracle", action="store_true", help="observe the task (the oracle baseline)"
    )
    pretrain.set_defaults(handler=_pretrain)

    evaluate_parser = commands.add_parser(
        "evaluate",
        help="adaptation curves on held-out tasks against baselines",
        description="Adaptation curves on held-out test-split tasks (MAML's protocol).",
    )
    evaluate_parser.add_argument(
        "source",
        metavar="RUN_DIR_OR_FILE_OR_PRESET",
        help="a training run, a policy or checkpoint file, an SB3 .zip (a plain one needs "
        "--set env.id=...), or a preset with shipped policies",
    )
    evaluate_parser.add_argument(
        "--tasks", type=int, default=None, help="held-out tasks (default 40)"
    )
    evaluate_parser.add_argument(
        "--protocol",
        choices=("toolkit", "metaworld"),
        default="toolkit",
        help="toolkit (MAML's: --tasks, --updates, --episodes as given) or metaworld "
        "(Meta-World's meta-learning evaluation on its families: 1 update of 10 episodes on "
        "each of the 50 goals of each test skill, or the first --tasks of each; writes "
        "RUN/eval-metaworld)",
    )
    evaluate_parser.add_argument(
        "--updates", type=int, default=None, help="learner updates (default 3)"
    )
    evaluate_parser.add_argument(
        "--episodes", type=int, default=None, help="episodes per update (20)"
    )
    evaluate_parser.add_argument(
        "--seed", type=int, default=None, help="evaluation seed (default 0)"
    )
    evaluate_parser.add_argument(
        "--inits",
        default=None,
        help="comma-separated inits among meta,pretrained,random,oracle "
        "(default: meta, random and the baselines found)",
    )
    evaluate_parser.add_argument(
        "--pretrained",
        type=Path,
        default=None,
        help="pretrained baseline: a `reptile-rl pretrain` run or its policy file",
    )
    evaluate_parser.add_argument(
        "--oracle",
        type=Path,
        default=None,
        help="oracle baseline: a `reptile-rl pretrain --oracle` run or policy file",
    )
    _add_set_argument(
        evaluate_parser,
        "override a configuration key, e.g. "
        "evaluation.inner={learning_rate: 0.01} or parallel.workers=2",
    )
    evaluate_parser.add_argument(
        "--task-file",
        type=Path,
        default=None,
        help="a JSON list of tasks to evaluate on instead of --tasks test-split draws",
    )
    evaluate_parser.add_argument(
        "--out", type=Path, default=None, help="output folder (RUN_DIR/eval)"
    )
    evaluate_parser.set_defaults(handler=_evaluate)

    plot = commands.add_parser("plot", help="draw a run's training curves to PNG")
    plot.add_argument("run_dir", type=Path, metavar="RUN_DIR")
    plot.add_argument("--out", type=Path, default=None, help="output PNG (RUN_DIR/training.png)")
    plot.set_defaults(handler=_plot)

    adapt_parser = commands.add_parser(
        "adapt",
        help="adapt a meta-policy to one task; write a plain SB3 policy.zip",
        description="Adapt a meta-policy to one task with the source's own evaluation settings "
        "(per-update rates, advantage baseline, episodes per update) and write DIR/policy.zip "
        "(plain SB3), DIR/policy.safetensors and DIR/adaptation.csv.",
    )
    adapt_parser.add_argument(
        "source",
        metavar="SOURCE",
        help="a training run, a policy or checkpoint file, an SB3 .zip, or a preset name",
    )
    adapt_parser.add_argument(
        "--task",
        required=True,
        help='the task as JSON, e.g. \'{"family": "navigation2d", "goal_x": 0.3, "goal_y": '
        "-0.2}', or a file holding it",
    )
    adapt_parser.add_argument(
        "--updates", type=int, default=None, help="updates (default: the source's evaluation's)"
    )
    adapt_parser.add_argument(
        "--episodes", type=int, default=None, help="episodes per update (default: the source's)"
    )
    adapt_parser.add_argument("--seed", type=int, default=0, help="adaptation seed (default 0)")
    adapt_parser.add_argument(
        "--out", type=Path, default=None, help="a new output folder (runs/<name>-adapted-...)"
    )
    _add_set_argument(
        adapt_parser,
        "override the source's configuration, e.g. "
        "evaluation.inner={update_learning_rates: [0.05]}; env.id=... for a plain SB3 zip",
    )
    adapt_parser.set_defaults(handler=_adapt)

    export_parser = commands.add_parser(
        "export",
        help="write a policy (e.g. a preset's shipped meta-policy) as a plain SB3 .zip",
    )
    export_parser.add_argument("source", metavar="SOURCE", help="as for adapt")
    export_parser.add_argument("--out", type=Path, required=True, help="the new .zip file")
    _add_set_argument(
        export_parser,
        "env.id=... for a plain SB3 zip",
    )
    export_parser.set_defaults(handler=_export)

    envs = commands.add_parser("envs", help="list the registered task families")
    envs.set_defaults(handler=_envs)
    return parser


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    # A task family in the user's own module (env.id "my_module:My/Family-v0") is found in the
    # current directory, as `python -m` finds modules; appended, so it shadows nothing.
    if os.getcwd() not in sys.path:
        sys.path.append(os.getcwd())
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    handler: Callable[[argparse.Namespace], None] = args.handler
    # Preemption sends SIGTERM: stop like Ctrl-C so that workers are shut down cleanly.
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        handler(args)
    except (UserError, ConfigError, CheckpointError) as error:
        print(f"reptile-rl: error: {error}", file=sys.stderr)
        return USER_ERROR
    except (TrainingError, StorageError) as error:
        print(f"reptile-rl: error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("reptile-rl: interrupted; resume with --resume RUN_DIR", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
