"""The evaluation commands' command line: options in, figures out (one JSON object last).

Every ``hand-mesh eval <what>`` parses its options with :func:`figures_parser` and prints
its figures with :func:`print_figures`, so ``--json`` means the same everywhere.
"""

import argparse
import json


def figures_parser(prog, doc):
    """Return the argument parser of command ``prog`` (described by ``doc``'s first paragraph).

    It has the ``--json`` flag; the caller adds the command's own options.
    """
    parser = argparse.ArgumentParser(prog=prog, description=doc.split('\n\n')[0])
    parser.add_argument('--json', action='store_true', help='print one JSON object last')
    return parser


def print_figures(figures, as_json, text=None):
    """Print ``figures``: ``text(figures)`` (or indented JSON), then one JSON line if asked.

    Without ``text``, ``as_json`` prints the one JSON line only.
    """
    if text is not None:
        print(text(figures))
    elif not as_json:
        print(json.dumps(figures, indent=2))
    if as_json:
        print(json.dumps(figures))
