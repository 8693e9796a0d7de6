"""``hand-mesh process`` on bags (MCAP, sqlite3) and a video built here from the sample video.

Most tests run the command with a test-data pipeline (hands made with the real hand model,
placed where the camera sees them; no hand on every fifth image) so that topics, counts,
stamps, files and Ctrl-C handling are checked exactly; one test runs the real pipeline (it
fails when setup has not built the mesh network).
"""

import csv
import json
import os
import signal

import cv2
import numpy as np
import pytest

rclpy = pytest.importorskip('rclpy', reason='ROS 2 (rclpy) is not installed')

from rclpy.serialization import deserialize_message  # noqa: E402,I100
from sensor_msgs.msg import CompressedImage  # noqa: E402

from hand_mesh_ros.core.camera.camera import CameraModel  # noqa: E402
from hand_mesh_ros.core.hand.hand_model import load_hand_model  # noqa: E402
from hand_mesh_ros.core.hand.rotations import axis_angle_to_matrix  # noqa: E402
from hand_mesh_ros.core.types import FrameResult, HandEstimate  # noqa: E402
from hand_mesh_ros.msg import HandMeshArray, HandPoseArray  # noqa: E402
from hand_mesh_ros.paths import data_dir, models_dir  # noqa: E402
from hand_mesh_ros.ros.bag_io import bag_topics, BagWriter, read_bag  # noqa: E402
from hand_mesh_ros.ros.calibration import Calibration, camera_info_msg  # noqa: E402
from hand_mesh_ros.ros.image_conversion import rgb_to_image  # noqa: E402
from hand_mesh_ros.ros.messages import ns_to_time  # noqa: E402
from hand_mesh_ros.ros.stamp_cache import stamp_to_ns  # noqa: E402
from hand_mesh_ros.tools.process import process  # noqa: E402
from hand_mesh_ros.tools.process.process_outputs import csv_header  # noqa: E402
from hand_mesh_ros.tools.video_frames import iter_frames  # noqa: E402

N_FRAMES = 15
BASE_NS = 1_700_000_000_123_000_000
PERIOD_NS = 40_000_000
FRAME_ID = 'cam_optical'
MODEL = load_hand_model()


@pytest.fixture(scope='module')
def frames():
    """Return the first 15 RGB frames of the sample video."""
    return [rgb for _, _, rgb in iter_frames(data_dir() / 'asl_hand.25fps.mp4',
                                             max_frames=N_FRAMES)]


def calibration_for(rgb):
    """Return a calibration (not the assumed one) for the frame size."""
    h, w = rgb.shape[:2]
    fx, cx, cy = 700.0, 0.48 * w, 0.52 * h
    return Calibration(width=w, height=h, camera_name='test', k=(fx, 0, cx, 0, fx, cy, 0, 0, 1),
                       distortion_model='plumb_bob', d=(0.0,) * 5, r=(1, 0, 0, 0, 1, 0, 0, 0, 1),
                       p=(fx, 0, cx, 0, 0, fx, cy, 0, 0, 0, 1, 0))


def write_bag(path, frames, storage, compressed=False, info_every=1, extra_image_topic=False):
    """Write images (+ camera_info every ``info_every`` frames); return the image stamps."""
    stamps = []
    with BagWriter(path, storage=storage) as writer:
        for i, rgb in enumerate(frames):
            stamp_ns = BASE_NS + i * PERIOD_NS
            stamps.append(stamp_ns)
            stamp = ns_to_time(stamp_ns)
            if i % info_every == 0:
                writer.write_message('/cam/camera_info',
                                     camera_info_msg(calibration_for(rgb), stamp, FRAME_ID),
                                     stamp_ns)
            if compressed:
                msg = CompressedImage(format='jpeg', data=cv2.imencode(
                    '.jpg', cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))[1].tobytes())
                msg.header.stamp, msg.header.frame_id = stamp, FRAME_ID
                writer.write_message('/cam/image_raw/compressed', msg, stamp_ns)
            else:
                writer.write_message('/cam/image_raw', rgb_to_image(rgb, stamp, FRAME_ID),
                                     stamp_ns)
            if extra_image_topic:
                writer.write_message('/other/image', rgb_to_image(rgb, stamp, 'other'), stamp_ns)
    return stamps


class TestDataPipeline:
    """A hand of the real hand model 0.5 m in front of the camera, none every fifth frame."""

    __test__ = False

    def __init__(self, config, interrupt_at=None, signal_at=None):
        self.config = config
        self.calls = 0
        self.interrupt_at = interrupt_at
        self.signal_at = signal_at      # (call index, signal) sent to this process
        self.closed = False
        self.results = []

    def camera_for(self, frame):
        if frame.camera is not None:
            return frame.camera, frame.camera.mode.value
        h, w = frame.rgb.shape[:2]
        return CameraModel.assumed_fov(w, h, self.config.camera.assumed_hfov_deg), 'assumed_fov'

    def process(self, frame):
        if self.calls == self.interrupt_at:
            raise KeyboardInterrupt
        if self.signal_at is not None and self.calls == self.signal_at[0]:
            os.kill(os.getpid(), self.signal_at[1])
        index = self.calls
        self.calls += 1
        camera, mode = self.camera_for(frame)
        hands = []
        if index % 5 != 4:
            out = MODEL.forward(MODEL.clamp_pose(np.full((MODEL.n_bones, 3), 0.1)))
            rot = axis_angle_to_matrix(np.array([2.8, 0.2, 0.1]))
            t = np.array([0.01 * index, 0.0, 0.5])
            t_cam_hand = np.eye(4)
            t_cam_hand[:3, :3], t_cam_hand[:3, 3] = rot, t
            joints = out.joint_centres @ rot.T + t
            px = camera.project(out.keypoints @ rot.T + t)
            hands.append(HandEstimate(
                track_id=3, side='right', side_score=0.9, score=0.95, keypoints_px=px,
                observed_keypoints_px=px + 1.0, joints_m=joints,
                vertices_m=out.vertices @ rot.T + t, faces=out.faces,
                bone_transforms=t_cam_hand @ out.bone_frames, bone_parents=MODEL.parents,
                bone_names=MODEL.bone_names, pose_coefficients=np.zeros((MODEL.n_bones, 3)),
                shape_coefficients=MODEL.zero_shape(), hand_model='anny', hand_length_m=0.19,
                confidence=0.5, position_covariance_m2=np.eye(3) * 1e-4,
                reprojection_error_px=1.41, position_mode=mode,
                keypoints_m=out.keypoints @ rot.T + t))
        self.results.append(FrameResult(
            stamp_ns=frame.stamp_ns, frame_id=frame.frame_id,
            image_size=(frame.rgb.shape[1], frame.rgb.shape[0]), hands=hands,
            position_mode=mode, timings_ms={'tailor': 1.0}))
        return self.results[-1]

    def close(self):
        self.closed = True


def run(argv, interrupt_at=None, signal_at=None):
    """Run process.main with the test-data pipeline; return (exit code, pipelines)."""
    made = []

    def factory(config):
        made.append(TestDataPipeline(config, interrupt_at, signal_at))
        return made[-1]

    return process.main(list(argv) + ['--no-progress'], pipeline_factory=factory), made


def hand_frames(n):
    """Return the indices of the test-data frames that have a hand."""
    return [i for i in range(n) if i % 5 != 4]


def check_outputs(out, stamps, frame_id, mode, video=True):
    """Check the bag, JSON lines, CSV, video and summary of a finished run."""
    n = len(stamps)
    with_hand = hand_frames(n)
    topics = bag_topics(out / 'results')
    assert topics['/hand/poses'] == ('hand_mesh_ros/msg/HandPoseArray', n)
    assert topics['/hand/mesh'] == ('hand_mesh_ros/msg/HandMeshArray', n)
    assert topics['/tf'] == ('tf2_msgs/msg/TFMessage', len(with_hand))
    # Markers: one per frame with a hand, plus one DELETE array after each frame without.
    assert topics['/hand/markers'][1] == len(with_hand) + len(
        [i for i in range(n) if i not in with_hand and i - 1 in with_hand])
    got = {'/hand/poses': [], '/hand/mesh': []}
    for topic, msgtype, stamp_ns, cdr in read_bag(out / 'results', list(got)):
        cls = HandPoseArray if topic == '/hand/poses' else HandMeshArray
        msg = deserialize_message(cdr, cls)
        assert stamp_to_ns(msg.header.stamp) == stamp_ns
        assert msg.header.frame_id == frame_id
        got[topic].append((stamp_ns, len(msg.hands)))
    expected = [(s, int(i in with_hand)) for i, s in enumerate(stamps)]
    assert got['/hand/poses'] == expected
    assert got['/hand/mesh'] == expected
    records = [json.loads(line) for line in (out / 'hands.jsonl').read_text().splitlines()]
    assert [r['stamp_ns'] for r in records] == stamps
    assert [len(r['hands']) for r in records] == [e[1] for e in expected]
    first = records[0]['hands'][0]
    assert first['position_mode'] == mode and len(first['joints_m']) == 21
    with open(out / 'hands.csv') as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == csv_header() and len(rows[0]) == 7 + 63 + 4 + 9
    header = rows[0]
    assert float(rows[1][header.index('confidence')]) == pytest.approx(first['confidence'])
    cov = [float(rows[1][header.index('cov_%s_m2' % c)]) for c in ('xx', 'yy', 'zz')]
    np.testing.assert_allclose(cov, np.asarray(first['position_covariance_m2'])[[0, 4, 8]],
                               rtol=1e-3)
    assert [int(r[0]) for r in rows[1:]] == [stamps[i] for i in with_hand]
    np.testing.assert_allclose([float(v) for v in rows[1][7:10]], first['joints_m'][0],
                               atol=1e-6)
    summary = json.loads((out / 'summary.json').read_text())
    assert summary['frames_processed'] == n and summary['interrupted'] is False
    assert summary['frames_with_hand'] == len(with_hand)
    if video:
        capture = cv2.VideoCapture(str(out / 'overlay.mp4'))
        count = 0
        while capture.read()[0]:
            count += 1
        capture.release()
        assert count == n
    return summary


def test_process_mcap_bag(tmp_path, frames):
    stamps = write_bag(tmp_path / 'in_mcap', frames, 'mcap')
    rc, made = run([str(tmp_path / 'in_mcap'), '--out', str(tmp_path / 'out')])
    assert rc == 0 and made[0].closed
    summary = check_outputs(tmp_path / 'out', stamps, FRAME_ID, 'full_intrinsics')
    assert summary['camera_info_status'] == {'ok': N_FRAMES}


def test_process_sqlite3_bag_compressed_sparse_camera_info(tmp_path, frames):
    stamps = write_bag(tmp_path / 'in_sqlite', frames, 'sqlite3', compressed=True,
                       info_every=3)
    rc, _ = run([str(tmp_path / 'in_sqlite'), '--out', str(tmp_path / 'out'),
                 '--storage', 'sqlite3'])
    assert rc == 0
    suffixes = {p.suffix for p in (tmp_path / 'out' / 'results').iterdir()}
    assert '.db3' in suffixes and '.mcap' not in suffixes
    summary = check_outputs(tmp_path / 'out', stamps, FRAME_ID, 'full_intrinsics')
    # camera_info on frames 0, 3, 6, ...: exact there, the latest one before elsewhere.
    assert summary['camera_info_status'] == {'ok': 5, 'unpaired': 10}


def test_process_video_uses_assumed_fov(tmp_path, frames):
    path = tmp_path / 'clip.mp4'
    h, w = frames[0].shape[:2]
    video = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*'mp4v'), 25.0, (w, h))
    for rgb in frames:
        video.write(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    video.release()
    rc, _ = run([str(path), '--out', str(tmp_path / 'out'), '--json'])
    assert rc == 0
    stamps = [i * PERIOD_NS for i in range(N_FRAMES)]     # 25 fps from 0
    summary = check_outputs(tmp_path / 'out', stamps, 'camera_optical_frame', 'assumed_fov')
    assert summary['position_modes'] == {'assumed_fov': N_FRAMES}


def test_max_frames_and_no_video(tmp_path, frames):
    stamps = write_bag(tmp_path / 'in', frames, 'mcap')
    rc, _ = run([str(tmp_path / 'in'), '--out', str(tmp_path / 'out'), '--max-frames', '7',
                 '--no-video'])
    assert rc == 0
    check_outputs(tmp_path / 'out', stamps[:7], FRAME_ID, 'full_intrinsics', video=False)
    assert not (tmp_path / 'out' / 'overlay.mp4').exists()


def test_interrupted_run_leaves_closed_outputs(tmp_path, frames):
    write_bag(tmp_path / 'in', frames, 'mcap')
    rc, made = run([str(tmp_path / 'in'), '--out', str(tmp_path / 'out')], interrupt_at=6)
    assert rc == 0 and made[0].closed
    out = tmp_path / 'out'
    summary = json.loads((out / 'summary.json').read_text())
    assert summary['interrupted'] is True and summary['frames_processed'] == 6
    topics = bag_topics(out / 'results')
    assert topics['/hand/poses'][1] == 6 and topics['/hand/mesh'][1] == 6
    assert len(list(read_bag(out / 'results', ['/hand/poses']))) == 6
    assert len((out / 'hands.jsonl').read_text().splitlines()) == 6
    capture = cv2.VideoCapture(str(out / 'overlay.mp4'))
    assert capture.isOpened() and capture.read()[0]
    capture.release()


@pytest.mark.parametrize('signum', [signal.SIGINT, signal.SIGTERM])
def test_ctrl_c_or_sigterm_stops_on_a_frame_boundary(tmp_path, frames, signum):
    write_bag(tmp_path / 'in', frames, 'mcap')
    handler_before = signal.getsignal(signum)
    # The signal arrives while frame 4 is processed: that frame is finished and written.
    rc, _ = run([str(tmp_path / 'in'), '--out', str(tmp_path / 'out')], signal_at=(4, signum))
    assert rc == 0
    assert signal.getsignal(signum) is handler_before
    out = tmp_path / 'out'
    summary = json.loads((out / 'summary.json').read_text())
    assert summary['interrupted'] is True and summary['frames_processed'] == 5
    assert summary['topics']['/hand/poses'] == 5
    assert bag_topics(out / 'results')['/hand/mesh'][1] == 5
    assert len((out / 'hands.jsonl').read_text().splitlines()) == 5


def test_ambiguous_image_topic_is_an_error_listing_topics(tmp_path, frames, capsys):
    write_bag(tmp_path / 'in', frames[:2], 'mcap', extra_image_topic=True)
    rc, made = run([str(tmp_path / 'in'), '--out', str(tmp_path / 'out')])
    assert rc == 2 and not made
    err = capsys.readouterr().err
    assert '--image-topic' in err and '/cam/image_raw' in err and '/other/image' in err
    rc, _ = run([str(tmp_path / 'in'), '--out', str(tmp_path / 'out'),
                 '--image-topic', '/other/image'])
    assert rc == 0
    summary = json.loads((tmp_path / 'out' / 'summary.json').read_text())
    # /other/image has no camera_info next to it, but the bag's only CameraInfo is used.
    assert summary['frames_processed'] == 2 and summary['camera_info_status'] == {'ok': 2}


def test_existing_output_bag_is_not_overwritten(tmp_path, frames):
    write_bag(tmp_path / 'in', frames[:2], 'mcap')
    assert run([str(tmp_path / 'in'), '--out', str(tmp_path / 'out')])[0] == 0
    assert run([str(tmp_path / 'in'), '--out', str(tmp_path / 'out')])[0] == 2


@pytest.mark.parametrize('fmt', ['ply', 'glb', 'obj'])
def test_export_mesh_writes_each_hand_and_loads_back(tmp_path, frames, fmt):
    trimesh = pytest.importorskip('trimesh', reason='--export-mesh needs trimesh')
    write_bag(tmp_path / 'in', frames[:6], 'mcap')
    rc, made = run([str(tmp_path / 'in'), '--out', str(tmp_path / 'out'), '--no-video',
                    '--export-mesh', fmt])
    assert rc == 0
    records = [json.loads(line) for line in (tmp_path / 'out' / 'hands.jsonl').read_text()
               .splitlines()]
    results = made[0].results
    expected = []
    for record, result in zip(records, results):
        for hand in result.hands:
            name = 'frame%06d_track%d_%s.%s' % (record['frame'], hand.track_id, hand.side, fmt)
            expected.append(name)
            mesh = trimesh.load(tmp_path / 'out' / 'meshes' / name, force='mesh',
                                process=False)
            # Vertices in the camera frame, metres (float32 in PLY and glTF).
            np.testing.assert_allclose(mesh.vertices, hand.vertices_m, atol=1e-6)
            np.testing.assert_array_equal(mesh.faces, hand.faces)
            np.testing.assert_allclose(mesh.face_normals, trimesh.Trimesh(
                hand.vertices_m, hand.faces, process=False).face_normals, atol=1e-4)
    assert len(expected) == len(hand_frames(6))
    assert sorted(p.name for p in (tmp_path / 'out' / 'meshes').iterdir()) == sorted(expected)
    summary = json.loads((tmp_path / 'out' / 'summary.json').read_text())
    assert summary['outputs']['meshes']['files'] == len(expected)
    assert summary['outputs']['meshes']['format'] == fmt


def test_export_mesh_rejects_an_unknown_format(tmp_path, frames, capsys):
    write_bag(tmp_path / 'in', frames[:2], 'mcap')
    with pytest.raises(SystemExit):
        run([str(tmp_path / 'in'), '--out', str(tmp_path / 'out'), '--export-mesh', 'stl'])
    assert 'invalid choice' in capsys.readouterr().err


def test_real_pipeline_on_mcap_bag(tmp_path, frames, capsys):
    if not (models_dir() / 'hand_mesh_full.onnx').is_file():
        pytest.fail('the mesh network is not built: run `hand-mesh setup-models` '
                    '(bootstrap.sh does)')
    stamps = write_bag(tmp_path / 'in', frames, 'mcap')
    rc = process.main([str(tmp_path / 'in'), '--out', str(tmp_path / 'out'), '--json',
                       '--no-progress', '--backend', 'onnxruntime', '--export-mesh', 'glb'])
    assert rc == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary['frames_processed'] == N_FRAMES
    assert summary['frames_with_hand'] >= N_FRAMES - 2
    assert summary['position_modes'] == {'full_intrinsics': N_FRAMES}
    poses = [(s, deserialize_message(c, HandPoseArray)) for _, _, s, c
             in read_bag(tmp_path / 'out' / 'results', ['/hand/poses'])]
    assert [s for s, _ in poses] == stamps
    depths = [m.hands[0].wrist_pose.position.z for _, m in poses if m.hands]
    assert all(0.1 < z < 3.0 for z in depths)
    # The exported meshes are the published ones: /hand/mesh of the same frame.
    trimesh = pytest.importorskip('trimesh', reason='--export-mesh needs trimesh')
    meshes = [deserialize_message(c, HandMeshArray) for _, _, _, c
              in read_bag(tmp_path / 'out' / 'results', ['/hand/mesh'])]
    exported = 0
    for index, msg in enumerate(meshes):
        for hand in msg.hands:
            side = 'left' if hand.side == hand.SIDE_LEFT else 'right'
            name = 'frame%06d_track%d_%s.glb' % (index, hand.track_id, side)
            path = tmp_path / 'out' / 'meshes' / name
            mesh = trimesh.load(path, force='mesh', process=False)
            np.testing.assert_allclose(mesh.vertices.ravel(), hand.vertices, atol=1e-6)
            np.testing.assert_array_equal(mesh.faces.ravel(), hand.triangles)
            exported += 1
    assert exported == summary['hands'] == summary['outputs']['meshes']['files']
