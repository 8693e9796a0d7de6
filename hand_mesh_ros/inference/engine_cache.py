"""Where TensorRT engines are cached, and under which key.

An engine is only valid for the model it was built from, the TensorRT version
that built it, the GPU it was tuned on and the precision and batch profile it
was built with.  The cache key hashes all of these, so a changed model, a
TensorRT upgrade or a different Jetson module gets a fresh engine instead of a
failed deserialisation.  Nothing here imports TensorRT.
"""

import hashlib
import json
import os
import pathlib
import tempfile

from hand_mesh_ros.paths import models_dir

PRECISIONS = ('fp16', 'fp32')
ENGINE_SUFFIX = '.engine'


def default_engine_cache_dir():
    """Return the default engine cache directory, ``models_dir()/engines``."""
    return models_dir() / 'engines'


def sha256_file(path, chunk_bytes=1 << 20):
    """Return the hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, 'rb') as stream:
        for chunk in iter(lambda: stream.read(chunk_bytes), b''):
            digest.update(chunk)
    return digest.hexdigest()


def engine_cache_key(model_sha256, tensorrt_version, gpu_name, precision, max_batch):
    """Return the cache key (24 hex chars) of one engine build.

    Args:
        model_sha256: hex sha256 of the ONNX file's bytes.
        tensorrt_version: ``tensorrt.__version__``, e.g. '10.3.0'.
        gpu_name: the CUDA device name, e.g. 'Orin' or 'NVIDIA GeForce RTX 4090'.
        precision: 'fp16' or 'fp32' (the precision actually built).
        max_batch: the largest batch of the optimisation profile (>= 1).

    Raises:
        ValueError: an empty field, an unknown precision or a batch below 1.
    """
    fields = {
        'model_sha256': str(model_sha256).strip().lower(),
        'tensorrt_version': str(tensorrt_version).strip(),
        'gpu_name': str(gpu_name).strip(),
    }
    for name, value in fields.items():
        if not value:
            raise ValueError(f'engine_cache_key: {name} is empty')
    if precision not in PRECISIONS:
        raise ValueError(f'engine_cache_key: precision must be one of {PRECISIONS}, '
                         f'got {precision!r}')
    if int(max_batch) < 1 or int(max_batch) != max_batch:
        raise ValueError(f'engine_cache_key: max_batch must be an integer >= 1, got {max_batch}')
    fields['precision'] = precision
    fields['max_batch'] = str(int(max_batch))
    canonical = '\n'.join(f'{key}={fields[key]}' for key in sorted(fields))
    return hashlib.sha256(canonical.encode('utf-8')).hexdigest()[:24]


def engine_path(cache_dir, model_path, key):
    """Return the engine file for ``model_path`` under ``key``: ``<stem>.<key>.engine``."""
    return pathlib.Path(cache_dir) / f'{pathlib.Path(model_path).stem}.{key}{ENGINE_SUFFIX}'


def metadata_path(engine_file):
    """Return the JSON sidecar that describes an engine file."""
    engine_file = pathlib.Path(engine_file)
    return engine_file.with_name(engine_file.name + '.json')


def write_engine(engine_file, serialized, metadata):
    """Write an engine and its metadata sidecar atomically (temp file + rename).

    Args:
        engine_file: destination path; its directory is created.
        serialized: the serialised engine (bytes or any buffer, e.g. IHostMemory).
        metadata: JSON-serialisable dict written next to it.
    """
    engine_file = pathlib.Path(engine_file)
    engine_file.parent.mkdir(parents=True, exist_ok=True)
    _atomic_write(engine_file, serialized)
    text = json.dumps(metadata, indent=2, sort_keys=True) + '\n'
    _atomic_write(metadata_path(engine_file), text.encode('utf-8'))


def read_metadata(engine_file):
    """Return the metadata dict of an engine file, or ``{}`` when absent or unreadable."""
    try:
        return json.loads(metadata_path(engine_file).read_text(encoding='utf-8'))
    except (OSError, ValueError):
        return {}


def _atomic_write(path, data):
    handle, tmp = tempfile.mkstemp(prefix=path.name + '.', suffix='.tmp', dir=path.parent)
    try:
        with os.fdopen(handle, 'wb') as stream:
            stream.write(data)
        os.replace(tmp, path)
    except BaseException:
        pathlib.Path(tmp).unlink(missing_ok=True)
        raise
