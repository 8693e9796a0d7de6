"""DDS smoke run: publish the package's messages in one process, receive them in another.

``hand-mesh smoke`` starts a listener process, publishes one HandPoseArray, one
HandMeshArray and one tf2_msgs/TFMessage from this process over real DDS, and prints what
the listener received. It proves that the generated messages, the type support libraries and
the middleware work on this machine.
"""

import argparse
import json
import math
import os
import subprocess
import sys
import time

TOPICS = {
    'poses': '/hand/poses',
    'mesh': '/hand/mesh',
    'tf': '/tf',
}


def make_sample_messages(stamp_ns, frame_id='camera_color_optical_frame'):
    """Return (HandPoseArray, HandMeshArray, TFMessage) with deterministic content.

    The pose array holds one right hand 0.5 m in front of the camera; the mesh is a
    tetrahedron (4 vertices, 4 outward-facing triangles); TF holds one wrist transform.
    """
    from geometry_msgs.msg import Point, TransformStamped
    from hand_mesh_ros.msg import HandMesh, HandMeshArray, HandPose, HandPoseArray
    from std_msgs.msg import Header
    from tf2_msgs.msg import TFMessage

    header = Header(frame_id=frame_id)
    header.stamp.sec = stamp_ns // 1_000_000_000
    header.stamp.nanosec = stamp_ns % 1_000_000_000

    pose = HandPose(header=header, track_id=7, side=HandPose.SIDE_RIGHT, side_score=0.9,
                    score=0.95, hand_model='anny', hand_length_m=0.19, confidence=0.8,
                    reprojection_error_px=1.5,
                    position_status=HandPose.POSITION_FULL_INTRINSICS)
    pose.wrist_pose.position.z = 0.5
    pose.position_covariance = [1e-4, 0.0, 0.0, 0.0, 1e-4, 0.0, 0.0, 0.0, 9e-4]
    pose.wrist_pose.orientation.w = 1.0
    pose.joints = [Point(x=0.01 * i, y=-0.005 * i, z=0.5) for i in range(21)]
    pose.keypoints_px = [float(v) for i in range(21) for v in (320.0 + i, 240.0 - i)]
    pose.pose_coefficients = [0.0] * 63
    pose.shape_coefficients = [0.1, -0.2, 0.0, 0.3]
    poses = HandPoseArray(header=header, hands=[pose])

    mesh = HandMesh(track_id=7, side=HandMesh.SIDE_RIGHT, hand_model='anny')
    mesh.vertices = [0.0, 0.0, 0.5, 0.1, 0.0, 0.5, 0.0, 0.1, 0.5, 0.0, 0.0, 0.6]
    mesh.triangles = [0, 2, 1, 0, 1, 3, 0, 3, 2, 1, 2, 3]
    meshes = HandMeshArray(header=header, hands=[mesh])

    transform = TransformStamped(header=header, child_frame_id='hand_right_wrist')
    transform.transform.translation.z = 0.5
    transform.transform.rotation.w = 1.0
    tf_message = TFMessage(transforms=[transform])
    return poses, meshes, tf_message


def summarize(poses, meshes, tf_message):
    """Return a JSON-friendly summary of the three messages (what a listener saw)."""
    def stamp(header):
        return header.stamp.sec * 1_000_000_000 + header.stamp.nanosec

    finite = all(math.isfinite(v) for p in poses.hands
                 for v in [c for j in p.joints for c in (j.x, j.y, j.z)])
    return {
        'poses': {'stamp_ns': stamp(poses.header), 'frame_id': poses.header.frame_id,
                  'hands': len(poses.hands),
                  'track_ids': [int(p.track_id) for p in poses.hands],
                  'joints': [len(p.joints) for p in poses.hands],
                  'wrist_z_m': [p.wrist_pose.position.z for p in poses.hands],
                  'finite': finite},
        'mesh': {'stamp_ns': stamp(meshes.header),
                 'hands': len(meshes.hands),
                 'vertices': [len(m.vertices) // 3 for m in meshes.hands],
                 'triangles': [len(m.triangles) // 3 for m in meshes.hands]},
        'tf': {'transforms': len(tf_message.transforms),
               'child_frames': [t.child_frame_id for t in tf_message.transforms],
               'stamp_ns': [stamp(t.header) for t in tf_message.transforms]},
    }


def _reliable_qos():
    from rclpy.qos import QoSDurabilityPolicy, QoSProfile, QoSReliabilityPolicy
    return QoSProfile(depth=10, reliability=QoSReliabilityPolicy.RELIABLE,
                      durability=QoSDurabilityPolicy.VOLATILE)


def listen(timeout_s):
    """Receive one message on each topic; print one JSON summary line; return exit code."""
    import rclpy
    from hand_mesh_ros.msg import HandMeshArray, HandPoseArray
    from tf2_msgs.msg import TFMessage

    rclpy.init()
    node = rclpy.create_node('hand_mesh_smoke_listener')
    got = {}
    types = {'poses': HandPoseArray, 'mesh': HandMeshArray, 'tf': TFMessage}
    for key, topic in TOPICS.items():
        node.create_subscription(types[key], topic,
                                 lambda msg, key=key: got.setdefault(key, msg),
                                 _reliable_qos())
    print('listening', flush=True)
    deadline = time.monotonic() + timeout_s
    while len(got) < len(TOPICS) and time.monotonic() < deadline:
        rclpy.spin_once(node, timeout_sec=0.1)
    node.destroy_node()
    rclpy.shutdown()
    if len(got) < len(TOPICS):
        print(json.dumps({'error': 'timeout', 'received': sorted(got)}), flush=True)
        return 1
    print(json.dumps(summarize(got['poses'], got['mesh'], got['tf'])), flush=True)
    return 0


def publish_until_heard(listener, timeout_s, stamp_ns):
    """Publish the sample messages until ``listener`` (a Popen) exits; return its output."""
    import rclpy
    from hand_mesh_ros.msg import HandMeshArray, HandPoseArray
    from tf2_msgs.msg import TFMessage

    rclpy.init()
    node = rclpy.create_node('hand_mesh_smoke_talker')
    types = {'poses': HandPoseArray, 'mesh': HandMeshArray, 'tf': TFMessage}
    pubs = {key: node.create_publisher(types[key], topic, _reliable_qos())
            for key, topic in TOPICS.items()}
    messages = dict(zip(('poses', 'mesh', 'tf'), make_sample_messages(stamp_ns)))
    deadline = time.monotonic() + timeout_s
    try:
        while listener.poll() is None and time.monotonic() < deadline:
            if all(p.get_subscription_count() > 0 for p in pubs.values()):
                for key, pub in pubs.items():
                    pub.publish(messages[key])
            rclpy.spin_once(node, timeout_sec=0.1)
    finally:
        node.destroy_node()
        rclpy.shutdown()
    if listener.poll() is None:
        listener.kill()
    out, _ = listener.communicate(timeout=10)
    return listener.returncode, out


def main(argv=None):
    """Run the two-process smoke test (or, with --listen, the listener half)."""
    parser = argparse.ArgumentParser(prog='hand-mesh smoke', description=__doc__.split('\n')[0])
    parser.add_argument('--listen', action='store_true', help='run the listener half only')
    parser.add_argument('--timeout', type=float, default=30.0, help='seconds to wait')
    parser.add_argument('--json', action='store_true', help='print one JSON object last')
    args = parser.parse_args(argv)
    if args.listen:
        return listen(args.timeout)

    stamp_ns = time.time_ns()
    listener = subprocess.Popen(
        [sys.executable, '-m', 'hand_mesh_ros.ros.smoke', '--listen',
         '--timeout', str(args.timeout)],
        stdout=subprocess.PIPE, text=True, env=dict(os.environ))
    code, out = publish_until_heard(listener, args.timeout + 5, stamp_ns)
    lines = [line for line in out.splitlines() if line.startswith('{')]
    result = json.loads(lines[-1]) if lines else {'error': 'listener printed nothing'}
    ok = (code == 0 and 'error' not in result
          and result['poses']['stamp_ns'] == stamp_ns
          and result['mesh']['triangles'] == [4]
          and result['tf']['child_frames'] == ['hand_right_wrist'])
    result['ok'] = bool(ok)
    result['listener_pid'] = listener.pid
    result['talker_pid'] = os.getpid()
    if not args.json:
        print('smoke run over DDS (talker pid %d -> listener pid %d): %s'
              % (os.getpid(), listener.pid, 'OK' if ok else 'FAILED'))
        if 'error' not in result:
            print('  /hand/poses: %(hands)d hand(s), track ids %(track_ids)s, '
                  'joints %(joints)s, wrist z %(wrist_z_m)s m, frame %(frame_id)s'
                  % result['poses'])
            print('  /hand/mesh:  %(hands)d mesh(es), vertices %(vertices)s, '
                  'triangles %(triangles)s' % result['mesh'])
            print('  /tf:         %(transforms)d transform(s) %(child_frames)s' % result['tf'])
    print(json.dumps(result))
    return 0 if ok else 1


if __name__ == '__main__':
    sys.exit(main())
