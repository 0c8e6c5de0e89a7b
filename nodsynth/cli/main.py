"""``nodsynth <verb>``: one sub-command per module in :mod:`nodsynth.cli.verbs`.

A verb module defines ``VERB`` (its name), ``HELP`` (one line), ``add_arguments(parser)``
and ``run(args) -> int``. Errors the user can fix (:class:`~nodsynth.errors.NodsynthError`)
are printed as one line and exit with status 2; nothing is written for them. Before a verb runs, no
output may be an input and every output must be writable (:func:`.path_options.check_path_options`).
"""
from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
from typing import Optional, Sequence

from .. import __version__
from ..errors import NodsynthError
from . import verbs
from .path_options import check_path_options
from .volume_options import describe_volume_options


def _verb_modules():
    for info in sorted(pkgutil.iter_modules(verbs.__path__), key=lambda m: m.name):
        if not info.name.startswith("_"):
            yield importlib.import_module(f"{verbs.__name__}.{info.name}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="nodsynth", description="Nodule-oriented CT synthesis (NodMAISI).")
    parser.add_argument("--version", action="version", version=f"nodsynth {__version__}")
    sub = parser.add_subparsers(dest="verb", metavar="VERB")
    for module in _verb_modules():
        verb_parser = sub.add_parser(module.VERB, help=module.HELP.replace("%", "%%"), description=module.HELP)
        module.add_arguments(verb_parser)
        verb_parser.set_defaults(_run=module.run)
        _describe_sub_verbs(verb_parser)
    describe_volume_options(parser)
    return parser


def _describe_sub_verbs(parser: argparse.ArgumentParser) -> None:
    """Give every sub-verb without a description its one-line help as description (shown by ``--help``)."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {choice.dest: choice.help for choice in action._choices_actions}
            for name, sub_parser in action.choices.items():
                if sub_parser.description is None:
                    sub_parser.description = helps.get(name)
                _describe_sub_verbs(sub_parser)


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "_run", None):
        parser.print_help()
        return 1
    try:
        check_path_options(args)
        return int(args._run(args) or 0)
    except NodsynthError as exc:
        print(f"nodsynth {args.verb}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"nodsynth {args.verb}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
