"""``rolechain --help`` and every subcommand's: complete sentences (none cut mid-way), no reST markup, a
description for each; ``--version`` from the package's metadata."""

from __future__ import annotations

import argparse
import re
from importlib import metadata

import pytest
from rolechain import cli

REST_MARKUP = re.compile(r"``|:[a-z]+:`|`[^`]+`_|^\.\. ", re.M)
CUT = re.compile(r"([,;:(\-]|\b(and|or|the|a|of|to|with))$")
PAIRS = ("()", "[]", "{}")


def subcommands() -> dict[str, argparse.ArgumentParser]:
    parser = cli.build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(sub.choices)


def texts(parser: argparse.ArgumentParser) -> list[tuple[str, str]]:
    """(where, text) of every piece of help the parser prints."""
    found = [("description", parser.description or ""), ("epilog", parser.epilog or "")]
    for group in parser._action_groups:
        found.append((f"group {group.title}", group.description or ""))
    for action in parser._actions:
        if action.help and action.help != argparse.SUPPRESS:
            found.append((f"{'/'.join(action.option_strings) or action.dest}", action.help))
        if isinstance(action, argparse._SubParsersAction):
            found += [(f"COMMAND {choice.dest}", choice.help or "") for choice in action._choices_actions]
    return [(where, " ".join(text.split())) for where, text in found if text]


def problems(name: str, parser: argparse.ArgumentParser) -> list[str]:
    bad = []
    for where, text in texts(parser):
        if REST_MARKUP.search(text):
            bad.append(f"{name} {where}: reST markup in {text!r}")
        if CUT.search(text):
            bad.append(f"{name} {where}: cut mid-sentence: {text!r}")
        for opening, closing in PAIRS:
            if text.count(opening) != text.count(closing):
                bad.append(f"{name} {where}: unbalanced {opening}{closing} in {text!r}")
        if text.count('"') % 2:
            bad.append(f"{name} {where}: unbalanced quotes in {text!r}")
    description = " ".join((parser.description or "").split())
    if not description.endswith("."):
        bad.append(f"{name}: its description is not a complete sentence: {description!r}")
    if REST_MARKUP.search(parser.format_help()):
        bad.append(f"{name}: reST markup in its --help")
    return bad


def test_every_help_text_is_complete_and_plain() -> None:
    bad = problems("rolechain", cli.build_parser())
    for name, parser in subcommands().items():
        bad += problems(f"rolechain {name}", parser)
    assert bad == []


def test_the_checks_catch_what_they_are_for() -> None:
    # the top-level description the parser had: the docstring's first line, cut after "failed,"
    parser = argparse.ArgumentParser(description="The ``rolechain`` command line. Exit codes: 0 ok, 1 failed,")
    parser.add_argument("--x", help="see :class:`Chain` (the")
    found = problems("old", parser)
    assert any("reST markup" in p for p in found)
    assert any("cut mid-sentence" in p for p in found)
    assert any("unbalanced ()" in p for p in found)


@pytest.mark.parametrize("name", sorted(subcommands()))
def test_each_subcommand_prints_its_help(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main([name, "--help"]) == 0
    printed = capsys.readouterr().out
    assert printed.startswith(f"usage: rolechain {name}")
    assert " ".join((subcommands()[name].description or "").split()[:4]) in " ".join(printed.split())


def test_version_comes_from_the_package_metadata(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["--version"]) == 0
    assert capsys.readouterr().out == f"rolechain {metadata.version('rolechain')}\n"
