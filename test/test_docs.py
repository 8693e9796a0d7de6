"""The documentation: generated parameter page in step with the table, links that resolve."""

from pathlib import Path
import re

import pytest

from hand_mesh_ros.ros import parameters
from hand_mesh_ros.tools import docs_parameters

ROOT = Path(__file__).resolve().parents[1]
DOCS = sorted((ROOT / 'docs').glob('*.md'))
PAGES = [ROOT / 'README.md'] + DOCS
README_MAX_LINES = 260

#: [text](target) outside code spans; images too. Targets with a scheme are external.
LINK = re.compile(r'!?\[[^\]]*\]\(([^)\s]+)\)')
FENCE = re.compile(r'^```.*?^```', re.S | re.M)
CODE_SPAN = re.compile(r'`[^`\n]*`')


def _rows(text):
    """Return {parameter name: [default, allowed, change, effect]} of the page's tables."""
    rows = {}
    for line in text.splitlines():
        match = re.match(r'\| `([a-z_]+\.[a-z0-9_]+)` \| (.*) \|$', line)
        if match:
            rows[match.group(1)] = [cell.strip() for cell in
                                    re.split(r'(?<!\\)\|', match.group(2))]
    return rows


def test_parameters_page_is_generated_from_the_table():
    page = (ROOT / docs_parameters.DOC_PATH).read_text(encoding='utf-8')
    assert page == docs_parameters.parameters_markdown(), (
        'docs/parameters.md drifted from hand_mesh_ros/ros/parameters.py: run '
        'python -m hand_mesh_ros.tools.docs_parameters --write')


def test_every_parameter_has_default_range_and_effect():
    rows = _rows((ROOT / docs_parameters.DOC_PATH).read_text(encoding='utf-8'))
    assert set(rows) == set(parameters.SPECS)
    for spec in parameters.PARAMETERS:
        default, allowed, change, effect = rows[spec.name]
        assert default == '`%s`' % parameters.yaml_value(spec.default)
        assert allowed, spec.name
        assert change == ('restart' if spec.read_only else 'run time')
        assert effect == spec.description.replace('|', '\\|')
        if spec.choices:
            assert all('`%s`' % c in allowed for c in spec.choices)
        elif spec.min_value is not None:
            assert ' to ' in allowed


def test_generator_follows_a_changed_table():
    spec = parameters.ParamSpec('detection.example_s', 1.5, 'An example | with a bar.',
                                min_value=0.5, max_value=9.0)
    rows = _rows(docs_parameters.parameters_markdown((spec,)))
    assert rows == {'detection.example_s': ['`1.5`', '0.5 to 9', 'run time',
                                            'An example \\| with a bar.']}


def test_check_mode_reports_drift(tmp_path):
    (tmp_path / 'docs').mkdir()
    assert docs_parameters.main(['--check', '--root', str(tmp_path)]) == 1
    assert docs_parameters.main(['--write', '--root', str(tmp_path)]) == 0
    assert docs_parameters.main(['--check', '--root', str(tmp_path)]) == 0


def slug(heading):
    """Return GitHub's anchor of a Markdown heading."""
    text = CODE_SPAN.sub(lambda m: m.group(0)[1:-1], heading.strip().lower())
    text = re.sub(r'[^\w\- ]', '', text)
    return text.replace(' ', '-')


def anchors(path):
    """Return the set of heading anchors of a Markdown file."""
    text = FENCE.sub('', path.read_text(encoding='utf-8'))
    return {slug(m.group(1)) for m in re.finditer(r'^#{1,6} (.+)$', text, re.M)}


def relative_links(path):
    """Yield the relative link targets of a Markdown file (code excluded)."""
    text = FENCE.sub('', path.read_text(encoding='utf-8'))
    text = CODE_SPAN.sub('', text)
    for match in LINK.finditer(text):
        target = match.group(1)
        if not re.match(r'[a-z][a-z0-9+.-]*:', target):
            yield target


def test_slug_follows_github_rules():
    assert slug('RGB-D cameras') == 'rgb-d-cameras'
    assert slug('The node (`hand_mesh_node`)') == 'the-node-hand_mesh_node'
    assert slug('Install: ROS 2, pip') == 'install-ros-2-pip'


@pytest.mark.parametrize('page', PAGES, ids=lambda p: p.name)
def test_every_relative_link_resolves(page):
    assert DOCS, 'docs/*.md missing'
    broken = []
    for target in relative_links(page):
        file_part, _, anchor = target.partition('#')
        dest = (page.parent / file_part).resolve() if file_part else page
        if not dest.exists():
            broken.append(target)
        elif anchor and dest.suffix == '.md' and anchor not in anchors(dest):
            broken.append(target)
    assert not broken, '%s: broken links %s' % (page.name, broken)


def test_link_checker_finds_a_broken_link(tmp_path):
    page = tmp_path / 'page.md'
    page.write_text('# Title\n[ok](#title) [bad](missing.md) `[code](x.md)`\n')
    assert list(relative_links(page)) == ['#title', 'missing.md']
    assert anchors(page) == {'title'}


def test_readme_is_a_front_page():
    lines = (ROOT / 'README.md').read_text(encoding='utf-8').splitlines()
    assert len(lines) <= README_MAX_LINES
    # .ci/run runs these two commands: they must stay in the README, exactly.
    assert any(line.startswith('bash bootstrap.sh ') for line in lines)
    assert any(line.startswith('.venv/bin/python -m pytest') for line in lines)


@pytest.mark.parametrize('page', PAGES, ids=lambda p: p.name)
def test_pages_describe_the_present(page):
    text = page.read_text(encoding='utf-8').lower()
    found = [w for w in ('used to ', 'withdrawn', 'run 1', 'run 2', 'tests passed',
                         ' no longer ', 'previously') if w in text]
    assert not found, '%s reads like a history: %s' % (page.name, found)
