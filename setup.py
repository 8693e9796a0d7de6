"""pip install for hand_mesh_ros (the pip-installed-ROS path; colcon uses CMakeLists.txt).

The generated message modules are built by CMake (see bootstrap.sh); this file installs the
hand-written Python package and the console scripts.
"""

from pathlib import Path
from xml.etree import ElementTree

from setuptools import find_packages, setup

#: The version is written once, in package.xml (ament and rosdep read it there).
VERSION = ElementTree.parse(Path(__file__).resolve().parent / 'package.xml').findtext('version')

setup(
    name='hand_mesh_ros',
    version=VERSION.strip(),
    description='Hand mesh perception for ROS 2: TF joint frames, RViz meshes, hand messages.',
    license='Apache-2.0',
    python_requires='>=3.10',
    packages=find_packages(include=['hand_mesh_ros', 'hand_mesh_ros.*']),
    # ONNX Runtime comes from an extra: `onnxruntime` (CPU) and `onnxruntime-gpu` must never
    # be installed together (ONNX Runtime's rule), and Jetsons use NVIDIA's own build.
    install_requires=[
        'numpy',
        'scipy',
        'opencv-python-headless',
        'PyYAML',
        'transforms3d',
        'trimesh',
    ],
    extras_require={
        'cpu': ['onnxruntime'],
        'gpu': ['onnxruntime-gpu', 'onnx'],
        'setup': ['onnx', 'tflite', 'flatbuffers'],
        'bags': ['rosbags'],
        'tensorrt': ['tensorrt', 'pycuda', 'onnx'],
    },
    entry_points={
        'console_scripts': [
            'hand_mesh_node = hand_mesh_ros.ros.node:main',
            'hand_fusion_node = hand_mesh_ros.ros.fusion_node:main',
            'camera_source = hand_mesh_ros.ros.camera_source:main',
            'hand-mesh = hand_mesh_ros.tools.cli:main',
        ],
    },
)
