"""Lint with ament's own checkers, as `colcon test` would on a ROS build farm.

flake8 uses ament's configuration (99 columns, single quotes, google import order) plus
the package's own import group (setup.cfg);
ament_pep257 checks the PEP 257 convention (pydocstyle's 'pep257' set, which lets a
multi-line summary start on the first line and allows Google-style sections).
"""

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PATHS = [str(ROOT / p) for p in ('hand_mesh_ros', 'launch', 'test', 'setup.py')
         if (ROOT / p).exists()]


def test_flake8():
    main_with_errors = pytest.importorskip(
        'ament_flake8.main', reason='ament_flake8 is installed by bootstrap.sh').main_with_errors
    rc, errors = main_with_errors(argv=['--config', str(ROOT / 'setup.cfg')] + PATHS)
    assert rc == 0, 'flake8 found %d error(s):\n%s' % (len(errors), '\n'.join(errors))


def test_pep257():
    main = pytest.importorskip(
        'ament_pep257.main', reason='ament_pep257 is installed by bootstrap.sh').main
    argv = ['--convention', 'pep257'] + [p for p in PATHS if not p.startswith(str(ROOT / 'test'))]
    rc = main(argv=argv)
    assert rc == 0, 'pep257 found docstring errors (see the output above)'
