"""hand_mesh_ros.core must import (every module) in a process where rclpy cannot."""

import json
import subprocess
import sys

SCRIPT = r'''
import importlib, json, pkgutil, sys
for name in ('rclpy', 'std_msgs', 'sensor_msgs', 'geometry_msgs', 'visualization_msgs',
             'tf2_msgs', 'hand_mesh_ros.msg'):
    sys.modules[name] = None          # any import of these now raises ImportError
try:
    import rclpy  # noqa
    blocked = False
except ImportError:
    blocked = True
import hand_mesh_ros.core as core
names = [m.name for m in pkgutil.walk_packages(core.__path__, 'hand_mesh_ros.core.')]
for name in names:
    importlib.import_module(name)
ros = sorted(k for k, v in sys.modules.items()
             if v is not None and (k.startswith('rclpy') or k.endswith('_msgs')))
print(json.dumps({'blocked': blocked, 'modules': names, 'ros_modules': ros}))
'''


def test_core_imports_without_rclpy():
    proc = subprocess.run([sys.executable, '-c', SCRIPT], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result['blocked'] is True
    assert result['ros_modules'] == []
    assert 'hand_mesh_ros.core' not in result['modules']  # walk lists sub-modules only
