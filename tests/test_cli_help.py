"""Every command-line option explains itself in --help."""

from __future__ import annotations

import argparse

import pytest

from napari_lowlight.cli import _build_parser


def _walk(parser: argparse.ArgumentParser, prog: str = "napari-lowlight"):
    """(command path, parser) for the parser and every subparser below it."""
    yield prog, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                yield from _walk(child, f"{prog} {name}")


def _missing_help(parser):
    missing = []
    for prog, sub in _walk(parser):
        for action in sub._actions:
            if isinstance(action, (argparse._HelpAction, argparse._SubParsersAction)):
                continue
            if not action.option_strings:  # positionals: checked separately below
                continue
            if not (action.help or "").strip() or action.help == argparse.SUPPRESS:
                missing.append(f"{prog} {'/'.join(action.option_strings)}")
    return missing


def test_every_option_has_help():
    assert _missing_help(_build_parser()) == []


def test_every_positional_has_help():
    missing = [
        f"{prog} {action.dest}"
        for prog, sub in _walk(_build_parser())
        for action in sub._actions
        if not action.option_strings
        and not isinstance(action, argparse._SubParsersAction)
        and not (action.help or "").strip()
    ]
    assert missing == []


def test_walk_reaches_every_command():
    progs = {prog for prog, _ in _walk(_build_parser())}
    for command in ("degrade", "laic", "evaluate", "train", "export", "demo", "batch",
                    "enhance", "dequantize"):
        assert f"napari-lowlight {command}" in progs


@pytest.mark.parametrize("command", ["train", "export", "evaluate", "batch"])
def test_help_text_renders(command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        _build_parser().parse_args([command, "--help"])
    assert exit_info.value.code == 0
    assert "--" in capsys.readouterr().out
