"""Load the pipeline's models: inference sessions and the hand model, with clear errors."""

from pathlib import Path

import numpy as np

from hand_mesh_ros.core.errors import HandMeshError
from hand_mesh_ros.core.hand.hand_model import load_hand_model
from hand_mesh_ros.core.tracking.mesh_outputs import MESH_OUTPUTS
from hand_mesh_ros.paths import models_dir as default_models_dir


def load_sessions(model_cfg, max_hands, log):
    """Return (palm_session, mesh_session) of ``model_cfg`` (a ModelConfig).

    Engine profiles: the palm detector always runs one image; the mesh network one crop per
    hand, up to ``max_hands`` at once (HandTracker splits beyond).
    """
    from hand_mesh_ros.inference import create_session
    root = Path(model_cfg.models_dir) if model_cfg.models_dir else default_models_dir()
    kwargs = {'backend': model_cfg.backend, 'num_threads': model_cfg.num_threads,
              'fp16': model_cfg.fp16, 'log': log}
    palm = create_session(root / ('palm_detection_%s.onnx' % model_cfg.variant),
                          max_batch=1, **kwargs)
    mesh = create_session(root / ('hand_mesh_%s.onnx' % model_cfg.variant),
                          max_batch=max_hands, **kwargs)
    return palm, mesh


def check_mesh_session(mesh_session):
    """Raise HandMeshError unless ``mesh_session`` has the mesh network's outputs."""
    missing = [n for n in MESH_OUTPUTS if n not in mesh_session.output_names]
    if missing:
        raise HandMeshError('%s is not a hand mesh network (missing outputs %s); run '
                            '`hand-mesh setup-models`'
                            % (getattr(mesh_session, 'model_path', '?'), missing))


def check_palm_model(palm_detector, palm_session, min_side_px):
    """Run the palm detector once on a blank image, so a wrong model fails at start-up.

    Raises:
        HandMeshError: the palm model does not have the palm detector's interface.

    """
    blank = np.zeros((4 * min_side_px, 4 * min_side_px, 3), np.uint8)
    try:
        palm_detector.detect(blank)
    except Exception as exc:  # noqa: B902 - any failure means the model does not fit
        raise HandMeshError('%s is not a usable palm detection model (%s: %s); run '
                            '`hand-mesh setup-models`'
                            % (getattr(palm_session, 'model_path', '?'),
                               type(exc).__name__, exc)) from exc


def load_pipeline_hand_model(model_cfg):
    """Load the hand model of ``model_cfg``; raise HandMeshError naming the file when it cannot."""
    path = None
    if model_cfg.hand_model == 'mano':
        if not model_cfg.mano_path:
            raise HandMeshError("model.hand_model is 'mano' but model.mano_path is empty: "
                                'point it at your own MANO_RIGHT.pkl')
        path = Path(model_cfg.mano_path)
        if not path.is_file():
            raise HandMeshError('MANO file not found: %s (model.mano_path)' % path)
    elif model_cfg.models_dir:
        # A custom models directory may hold its own hand model; else the package's.
        candidate = Path(model_cfg.models_dir) / 'hand_model_right.npz'
        path = candidate if candidate.is_file() else None
    try:
        return load_hand_model(path)
    except HandMeshError:
        raise
    except Exception as exc:  # noqa: B902 - a corrupt file can fail in many ways
        raise HandMeshError('cannot load the hand model %s: %s: %s'
                            % (path or 'hand_model_right.npz (package models)',
                               type(exc).__name__, exc)) from exc
