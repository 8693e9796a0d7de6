"""The speed targets ``hand-mesh bench`` checks, each against figures measured in one run."""

#: Per-hand stage budgets (ms), so that the whole pipeline costs no more than MediaPipe.
PER_HAND_TARGETS_MS = {'landmark_pre_post': ('crop + landmark decoding', 0.5),
                       'root_recovery': ('root recovery', 0.3),
                       'tailor': ('tailor', 1.0)}

#: Whole pipeline / MediaPipe's whole frame, per peer setting (same detection schedule).
PEER_TARGETS = {'1 hand': 1.0, '2 hands': 0.9}


def target_checks(report):
    """Return the targets measured in this run: [{'target', 'value', 'limit', 'met'}].

    Only targets whose figures this run measured are listed.
    """
    checks = []

    def add(name, value, limit):
        checks.append({'target': name, 'value': round(float(value), 3),
                       'limit': round(float(limit), 3), 'met': bool(value <= limit)})

    stages = report['stages_ms']
    if 'e2e_latency_p50_ms' in report:
        add('e2e p50 ms <= 1.25 x whole frame + 3 ms', report['e2e_latency_p50_ms'],
            1.25 * stages['frame_total'] + 3.0)
        add('node RSS MB < 300', report['node_rss_mb'], 300.0)
    if 'pipeline' in report.get('node_steps_ms', {}):
        add('pipeline in the node / back to back <= 1.1',
            report['node_steps_ms']['pipeline'] / stages['frame_total'], 1.1)
    hands = max(report.get('hands_per_frame', 1.0), 1.0)
    for stage, (name, limit) in PER_HAND_TARGETS_MS.items():
        if stage in stages:
            add('%s ms per hand <= %.1f' % (name, limit), stages[stage] / hands, limit)
    for row in report.get('peer_comparison', ()):
        if 'ratio_full_pipeline' in row and row['setting'] in PEER_TARGETS:
            add('whole frame / MediaPipe at %s <= %.1f'
                % (row['setting'], PEER_TARGETS[row['setting']]),
                row['ratio_full_pipeline'], PEER_TARGETS[row['setting']])
    lite = report.get('mesh_network_vs_landmark', {}).get('lite')
    if lite:
        add('lite mesh network / bare lite landmark network <= 1.5', lite['ratio'], 1.5)
    return checks
