"""The ``reptile-rl`` command: train, pretrain, evaluate, plot, envs.

User errors (bad configuration, missing or corrupt files) print one line and exit with code 2;
nothing below this module parses arguments or prints for people.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from reptile_rl.checkpoint import CheckpointError
from reptile_rl.config import ConfigError, iter_options, load_config, preset_names
from reptile_rl.reptile import TrainingError

USER_ERROR = 2


class UserError(Exception):
    """An error in what the user asked for; reported in one line with exit code 2."""


def _options_epilog() -> str:
    lines = ["configuration keys for --set (default: help):"]
    for key, default, help_text in iter_options():
        lines.append(f"  {key} = {default!r}: {help_text}")
    return "\n".join(lines)


def _add_config_arguments(parser: argparse.ArgumentParser, preset_required: bool = True) -> None:
    parser.add_argument(
        "preset",
        nargs=None if preset_required else "?",
        metavar="PRESET_OR_YAML",
        help=f"a preset ({', '.join(preset_names())}) or a YAML file",
    )
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a configuration key, e.g. inner.learning_rate=0.01",
    )
    parser.add_argument("--seed", type=int, default=None, help="run seed (overrides the preset)")
    parser.add_argument("--out", type=Path, default=None, help="output directory")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")


def _train(args: argparse.Namespace) -> None:
    from reptile_rl.reptile import Reptile

    if args.resume is not None:
        if args.preset is not None or args.overrides or args.seed is not None or args.out:
            raise UserError(
                "--resume continues a run with its saved configuration; "
                "give no PRESET_OR_YAML, --set, --seed or --out with it"
            )
        reptile = Reptile.resume(args.resume, progress=not args.no_progress)
    else:
        if args.preset is None:
            raise UserError("give a PRESET_OR_YAML to train, or --resume RUN_DIR")
        config = load_config(args.preset, args.overrides, args.seed)
        reptile = Reptile(config, args.out, progress=not args.no_progress)
    reptile.learn()
    print(f"run directory: {reptile.run_dir}")


def _envs(args: argparse.Namespace) -> None:
    import gymnasium as gym

    from reptile_rl.envs_factory import env_horizon, family_task_type

    for env_id in sorted(i for i in gym.registry if i.startswith("ReptileRL/")):
        task_type = family_task_type(env_id)
        ranges = {**task_type.bounds, **task_type.choices}
        print(f"{env_id}: horizon {env_horizon(env_id)}, {task_type.__name__} {ranges}")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``reptile-rl``."""
    parser = argparse.ArgumentParser(prog="reptile-rl", description=__doc__.splitlines()[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress details")
    commands = parser.add_subparsers(dest="command", required=True)

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
    train.set_defaults(handler=_train)

    envs = commands.add_parser("envs", help="list the registered task families")
    envs.set_defaults(handler=_envs)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    handler: Callable[[argparse.Namespace], None] = args.handler
    try:
        handler(args)
    except (UserError, ConfigError, CheckpointError) as error:
        print(f"reptile-rl: error: {error}", file=sys.stderr)
        return USER_ERROR
    except TrainingError as error:
        print(f"reptile-rl: training stopped: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("reptile-rl: interrupted; resume with --resume RUN_DIR", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
