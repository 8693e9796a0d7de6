"""Mesh files of every processed frame's hands (``hand-mesh process --export-mesh FORMAT``).

For Blender, MeshLab, Foxglove and other viewers: one file per hand and frame,
``DIR/meshes/frame<NNNNNN>_track<ID>_<side>.<ply|glb|obj>``, where ``NNNNNN`` is the
``frame`` field of the same image's line in ``hands.jsonl``. Each file holds the hand's mesh
exactly as ``/hand/mesh`` publishes it: vertices in the camera optical frame (x right, y
down, z forward; metres), triangles counter-clockwise seen from outside (left hands
included), vertex colours by side and track as in RViz. Nothing is rotated to a viewer's
"up": glTF viewers that assume +y up show the hands as the camera sees them, upside down.

trimesh writes the files; it is imported only when an exporter is created, so the node and
the rest of ``hand-mesh process`` never load it.
"""

from pathlib import Path

import numpy as np

from hand_mesh_ros.ros.markers import hand_colour

#: The formats ``--export-mesh`` accepts (file suffix = trimesh ``file_type``).
FORMATS = ('ply', 'glb', 'obj')
MESH_DIR = 'meshes'


def mesh_file_name(frame_index, hand, fmt):
    """Return the file name of one hand's mesh in a frame, e.g. 'frame000012_track3_right.ply'."""
    return 'frame%06d_track%d_%s.%s' % (int(frame_index), int(hand.track_id), hand.side, fmt)


def hand_trimesh(hand):
    """Return a ``trimesh.Trimesh`` of a HandEstimate (camera frame, metres, no reordering)."""
    import trimesh
    vertices = np.asarray(hand.vertices_m, dtype=np.float64)
    rgba = np.append(np.round(np.asarray(hand_colour(hand.side, hand.track_id)) * 255), 255)
    return trimesh.Trimesh(vertices=vertices, faces=np.asarray(hand.faces, dtype=np.int64),
                           vertex_colors=np.tile(rgba.astype(np.uint8), (len(vertices), 1)),
                           process=False, validate=False)


class MeshExporter:
    """Write each frame's hands as mesh files under ``out_dir/meshes``."""

    def __init__(self, out_dir, fmt):
        """Check the format and that trimesh is importable; create the folder.

        Raises:
            ValueError: ``fmt`` is not one of :data:`FORMATS`.
            RuntimeError: trimesh is not installed.

        """
        if fmt not in FORMATS:
            raise ValueError('--export-mesh must be one of %s, got %r' % (', '.join(FORMATS), fmt))
        try:
            import trimesh  # noqa: F401 - checked here so a run fails before its first frame
        except ImportError as exc:
            raise RuntimeError('--export-mesh needs trimesh (pip install trimesh): %s'
                               % exc) from exc
        self.format = fmt
        self.directory = Path(out_dir) / MESH_DIR
        self.directory.mkdir(parents=True, exist_ok=True)
        self.files_written = 0

    def write(self, frame_index, hands):
        """Write one file per hand of frame ``frame_index``; return their paths."""
        paths = []
        for hand in hands:
            path = self.directory / mesh_file_name(frame_index, hand, self.format)
            path.write_bytes(_as_bytes(hand_trimesh(hand).export(file_type=self.format)))
            paths.append(path)
        self.files_written += len(paths)
        return paths

    def summary(self):
        """Return the summary entry of the export (folder, format, files written)."""
        return {'dir': str(self.directory), 'format': self.format, 'files': self.files_written}


def _as_bytes(data):
    """Return trimesh's export result (str for OBJ, bytes for PLY and GLB) as bytes."""
    return data.encode('utf-8') if isinstance(data, str) else bytes(data)
