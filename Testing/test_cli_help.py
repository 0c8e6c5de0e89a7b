"""``nodsynth --help`` and every verb's and sub-verb's ``--help``: one style, nothing undocumented."""
from __future__ import annotations

import argparse
import importlib

import pytest

from nodsynth.cli.main import build_parser
from nodsynth.cli.verbs import demo
from nodsynth.engines.base import Engine
from nodsynth.engines.registry import ENGINE_CLASSES, ENGINE_OPERATIONS


def _parsers(parser: argparse.ArgumentParser, path: str = "nodsynth"):
    """``(path, parser, one-line help)`` of every verb and sub-verb under ``parser``."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {choice.dest: choice.help for choice in action._choices_actions}
            for name, sub in action.choices.items():
                yield f"{path} {name}", sub, helps.get(name)
                yield from _parsers(sub, f"{path} {name}")


PARSERS = list(_parsers(build_parser()))


def test_the_walk_reaches_the_verbs_and_their_sub_verbs():
    paths = {path for path, _, _ in PARSERS}
    assert {"nodsynth demo", "nodsynth turing build", "nodsynth turing score", "nodsynth review compare",
            "nodsynth batch slurm-script", "nodsynth evaluate froc"} <= paths


@pytest.mark.parametrize("path, parser, line", PARSERS, ids=[p for p, _, _ in PARSERS])
def test_every_verb_line_is_lowercase_imperative_without_a_final_period_and_is_its_description(path, parser, line):
    assert line, f"{path} has no help line"
    assert line[0].islower() and not line.endswith("."), f"{path}: {line!r}"
    assert line.split()[0] not in ("a", "an", "the", "every", "per"), f"{path} starts with no verb: {line!r}"
    assert parser.description, f"{path} has no description"


@pytest.mark.parametrize("path, parser, line", PARSERS, ids=[p for p, _, _ in PARSERS])
def test_every_option_has_help(path, parser, line):
    undocumented = [a.option_strings or [a.dest] for a in parser._actions
                    if not isinstance(a, (argparse._HelpAction, argparse._SubParsersAction)) and not a.help]
    assert not undocumented, f"{path}: {undocumented}"


@pytest.mark.parametrize("path, parser, line", PARSERS, ids=[p for p, _, _ in PARSERS])
def test_every_help_has_one_section_of_each_title(path, parser, line):
    titles = [group.title for group in parser._action_groups if group._group_actions]
    assert len(titles) == len(set(titles)), f"{path}: sections {titles}"


def _implements(name: str, operation: str) -> bool:
    module, cls = ENGINE_CLASSES[name].split(":")
    return getattr(getattr(importlib.import_module(module), cls), operation) is not getattr(Engine, operation)


@pytest.mark.parametrize("name", sorted(ENGINE_CLASSES))
def test_the_engine_operations_table_matches_the_engines(name):
    assert {op for op in ("twin", "edit", "inpaint") if _implements(name, op)} == set(ENGINE_OPERATIONS[name])


@pytest.mark.parametrize("verb, operation", [("twin", "twin"), ("inpaint", "inpaint")])
def test_engine_choices_are_the_engines_that_can_do_the_verb(verb, operation):
    parser = dict((p, q) for p, q, _ in PARSERS)[f"nodsynth {verb}"]
    engine = next(a for a in parser._actions if "--engine" in a.option_strings)
    assert engine.choices and all(_implements(name, operation) for name in engine.choices), engine.choices


def test_demo_help_names_every_step():
    assert all(step.name in demo.HELP for step in demo.STEPS)


@pytest.mark.parametrize("path, parser", [("nodsynth", build_parser())] + [(p, q) for p, q, _ in PARSERS],
                         ids=["nodsynth"] + [p for p, _, _ in PARSERS])
def test_every_help_page_renders(path, parser):
    """argparse formats help strings with %: a bare '50 %' in a verb line broke 'nodsynth --help'."""
    text = parser.format_help()
    assert text.startswith("usage:"), f"{path}: {text[:80]!r}"
