"""Draw the hands (mesh, skeleton, label) over the camera image for /hand/debug_image."""

import cv2
import numpy as np

from hand_mesh_ros.ros.markers import hand_colour, label_text, SKELETON_EDGES


def project_vertices(hand, camera):
    """Return (V, 2) pixel positions of the hand's mesh vertices.

    With a camera model the vertices are projected with it (distortion included); without one
    (weak-perspective mode) a scale and offset fitted from ``joints_m`` x, y to
    ``keypoints_px`` (least squares) is used.
    """
    vertices = np.asarray(hand.vertices_m, dtype=np.float64)
    if camera is not None and np.all(vertices[:, 2] > 1e-6):
        return np.asarray(camera.project(vertices), dtype=np.float64)
    # keypoints_px are the landmark-convention keypoints: fit against their own 3D.
    joints = np.asarray(hand.joints_m if getattr(hand, 'keypoints_m', None) is None
                        else hand.keypoints_m, dtype=np.float64)[:, :2]
    keypoints = np.asarray(hand.keypoints_px, dtype=np.float64)
    centred_j = joints - joints.mean(axis=0)
    denom = float(np.sum(centred_j ** 2))
    scale = float(np.sum(centred_j * (keypoints - keypoints.mean(axis=0)))) / max(denom, 1e-12)
    return (vertices[:, :2] - joints.mean(axis=0)) * scale + keypoints.mean(axis=0)


def draw_hands(rgb, hands, camera=None, mesh_alpha=0.45):
    """Return a copy of ``rgb`` ((H, W, 3) uint8) with every hand drawn.

    The mesh is filled (semi-transparent, front faces only) with the hand's colour, the
    skeleton is drawn between the 21 model keypoints, and a label 'right #3 0.97' is written
    near the wrist. ``rgb`` is not modified.
    """
    out = np.array(rgb, dtype=np.uint8, copy=True)
    height, width = out.shape[:2]
    limit = 4.0 * max(width, height)
    if hands:
        overlay = out.copy()
        for hand in hands:
            colour = tuple(int(255 * c) for c in hand_colour(hand.side, hand.track_id))
            px = project_vertices(hand, camera)
            tris = px[np.asarray(hand.faces)]
            ok = np.all(np.isfinite(tris), axis=(1, 2)) & np.all(np.abs(tris) < limit, axis=(1, 2))
            tris = tris[ok]
            # Front faces: counter-clockwise from outside = negative signed area in image px
            # (v points down), so keep the triangles facing the camera.
            edge1, edge2 = tris[:, 1] - tris[:, 0], tris[:, 2] - tris[:, 0]
            area = edge1[:, 0] * edge2[:, 1] - edge1[:, 1] * edge2[:, 0]
            front = tris[area < 0.0]
            if len(front):
                cv2.fillPoly(overlay, np.round(front * 16).astype(np.int32), colour,
                             lineType=cv2.LINE_AA, shift=4)
        cv2.addWeighted(overlay, mesh_alpha, out, 1.0 - mesh_alpha, 0.0, dst=out)
    for hand in hands:
        colour = tuple(int(255 * c) for c in hand_colour(hand.side, hand.track_id))
        keypoints = np.asarray(hand.keypoints_px, dtype=np.float64)
        if not np.all(np.isfinite(keypoints)) or np.any(np.abs(keypoints) > limit):
            continue
        pts = np.round(keypoints).astype(np.int32)
        for a, b in SKELETON_EDGES:
            cv2.line(out, tuple(int(v) for v in pts[a]), tuple(int(v) for v in pts[b]),
                     (255, 255, 255), 2, cv2.LINE_AA)
        for p in pts:
            cv2.circle(out, (int(p[0]), int(p[1])), 3, colour, -1, cv2.LINE_AA)
        cv2.putText(out, label_text(hand), (int(pts[0, 0]) + 6, int(pts[0, 1]) + 18),
                    cv2.FONT_HERSHEY_SIMPLEX, 0.5, colour, 1, cv2.LINE_AA)
    return out
