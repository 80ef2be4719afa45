"""Command line: `python -m pipeline <stage>` (also the `pipeline` console script).

Owns argument parsing only (nnU-Net's entry-point / API split). A stage is one typed function,
`run(settings, **paths)`, declared in its own module (found through pipeline/commands.py): each path
flag fills one of its arguments; every other flag sets a config key, merged over `--config` and
configs/default.yaml; the validated config's slice for the stage (pipeline/config/stages.py) is
its settings. What the function returns is printed. Bad input ends with one line on stderr
that names the file, flag or key, and exit status 2. Nothing heavy is imported before a stage
runs.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from pipeline.commands import STAGES, Flag
from pipeline.config.yamlfile import load_yaml
from pipeline.core.errors import BAD_INPUT, ConfigError, one_line, printable

EXIT_BAD_INPUT = 2
ARG = "arg:"  # argparse dest prefix of the flags that fill a stage function's path argument


def _parse_set(text: str) -> tuple[str, Any]:
    name, sep, value = text.partition("=")
    if not sep or not name:
        raise ConfigError(f"--set expects KEY=VALUE, got {text!r}")
    try:
        return name, load_yaml(value)
    except yaml.YAMLError:
        raise ConfigError(f"--set {name}: {value!r} is not valid YAML") from None


def _dest(flag: Flag) -> str:
    return ARG + flag.arg if flag.arg else str(flag.key)


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The parser of every stage, or of the stage `only` (what a command needs: its own stage's
    module is the only one imported)."""
    parser = argparse.ArgumentParser(prog="pipeline", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="stage", required=True, metavar="STAGE")
    for name in [only] if only else STAGES:
        stage = STAGES[name]
        p = sub.add_parser(name, help=stage.help, description=f"{stage.help}. {stage.description}")
        p.add_argument("--config", type=Path, help="YAML merged over configs/default.yaml")
        p.add_argument(
            "--set",
            action="append",
            default=[],
            metavar="KEY=VALUE",
            help="set any config key (dotted), e.g. --set detector.readout_noise_e=2.5",
        )
        for flag in stage.flags:
            where = f"config: {flag.key}" if flag.key else f"argument: {flag.arg}"
            kwargs: dict[str, Any] = {"help": f"{flag.help} [{where}]", "default": None}
            if flag.action:
                kwargs["action"] = flag.action
            else:
                kwargs["type"] = flag.type
            if flag.nargs:
                kwargs["nargs"] = flag.nargs
            if flag.arg:
                kwargs["metavar"] = flag.arg.upper()
            p.add_argument(flag.name, dest=_dest(flag), **kwargs)
    return parser


def overrides_from(args: argparse.Namespace) -> dict[str, Any]:
    """The config keys the command line sets: `--set` pairs, then the flags given."""
    overrides = dict(_parse_set(text) for text in args.set)
    for flag in STAGES[args.stage].flags:
        value = getattr(args, _dest(flag))
        if flag.key and value is not None and not (flag.action == "store_true" and not value):
            overrides[flag.key] = value
    return overrides


def arguments_from(args: argparse.Namespace) -> dict[str, Any]:
    """The stage function's path arguments the command line gives; a missing required one is a
    one-line ConfigError naming its flag."""
    arguments = {}
    for flag in STAGES[args.stage].flags:
        value = getattr(args, _dest(flag)) if flag.arg else None
        if flag.arg and value is not None:
            arguments[flag.arg] = value
        elif flag.required:
            raise ConfigError(f"{flag.name} is required ({flag.help})")
    return arguments


def run_stage(stage: str, config_path: Path | None, overrides: dict, arguments: dict) -> Any:
    """Load and validate the config, check the paths, call the stage's function."""
    from pipeline.commands import settings_of
    from pipeline.config import load_config
    from pipeline.paths import check_stage_paths

    settings = settings_of(load_config(config_path, overrides), stage)
    check_stage_paths(stage, settings, arguments)
    if STAGES[stage].tracks and settings.tracking.enabled:
        from pipeline.tracking.store import check_store

        check_store(settings.tracking)  # before any work: an unreachable store is one line
    return STAGES[stage].function()(settings, **arguments)


def main(argv: Sequence[str] | None = None) -> int:
    from pipeline.core.atomic import ending_signal, install_signal_cleanup

    given = list(sys.argv[1:] if argv is None else argv)
    named = given[0] if given and given[0] in STAGES else None
    args = build_parser(named).parse_args(given)
    install_signal_cleanup()
    try:
        arguments = arguments_from(args)
        result = run_stage(args.stage, args.config, overrides_from(args), arguments)
    except BAD_INPUT as exc:
        ended = ending_signal()
        if ended is not None:  # stopped by SIGTERM or SIGINT, not bad input
            return 128 + ended
        print(f"pipeline {args.stage}: error: {printable(one_line(exc))}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except Exception:
        ended = ending_signal()
        if ended is not None:  # a library turned the stop's SystemExit into an error of its own
            return 128 + ended
        raise  # a bug: the traceback, exit status 1
    if result:
        print(printable(str(result)))
    return 0
