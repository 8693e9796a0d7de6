"""``hand-mesh --help`` and ``hand-mesh <command> --help`` list every command and option."""

import argparse

import pytest

from hand_mesh_ros.tools import cli
from hand_mesh_ros.tools.evaluation import evaluate, EVALUATIONS

COMMANDS = [[name] for name in cli.COMMANDS if name != 'eval'] + [
    ['eval', name] for name in EVALUATIONS]


def _help(argv, monkeypatch, capsys):
    """Run ``hand-mesh *argv --help``; return (its parser, the printed help)."""
    parsers = []
    original = argparse.ArgumentParser.parse_args

    def recording_parse_args(self, *args, **kwargs):
        parsers.append(self)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(argparse.ArgumentParser, 'parse_args', recording_parse_args)
    with pytest.raises(SystemExit) as exc:
        cli.main(list(argv) + ['--help'])
    assert exc.value.code == 0
    assert len(parsers) == 1, 'one parser per command'
    return parsers[0], capsys.readouterr().out


def test_top_level_help_lists_every_command_and_evaluation(capsys):
    assert cli.main(['--help']) == 0
    out = capsys.readouterr().out
    for name in cli.COMMANDS:
        assert '\n  %s ' % name in out
    for name in EVALUATIONS:
        assert name in out, 'hand-mesh --help does not name eval %s' % name


def test_eval_help_lists_every_evaluation(capsys):
    assert evaluate.main(['--help']) == 0
    out = capsys.readouterr().out
    for name, (_, help_text) in EVALUATIONS.items():
        assert '  %s ' % name in out and help_text in out


@pytest.mark.parametrize('argv', COMMANDS, ids=' '.join)
def test_command_help_describes_every_option(argv, monkeypatch, capsys):
    parser, out = _help(argv, monkeypatch, capsys)
    assert parser.prog == 'hand-mesh ' + ' '.join(argv)
    assert out.startswith('usage: hand-mesh ' + ' '.join(argv))
    assert parser.description
    if parser.description.startswith('hand-mesh '):   # RST markup cut in half
        assert '``' not in parser.description
    for action in parser._actions:
        names = action.option_strings or [action.dest]
        assert action.help and action.help != argparse.SUPPRESS, (
            'hand-mesh %s: %s has no help text' % (' '.join(argv), names[0]))
        for name in action.option_strings:
            assert name in out


def test_setup_models_help_says_network_pip_and_where_models_go(monkeypatch, capsys):
    _, out = _help(['setup-models'], monkeypatch, capsys)
    for needed in ('network', 'pip download', 'HAND_MESH_MODELS_DIR', 'HAND_MESH_CACHE_DIR',
                   'model.models_dir'):
        assert needed in out
