"""Read a TFLite flatbuffer into plain Python objects (no TensorFlow needed).

The reader uses the PyPI ``tflite`` package (generated flatbuffer accessors for the TFLite
schema) and returns a :class:`TfliteGraph`: tensors with names, shapes and constant data,
and operators in execution order with their builtin options already decoded.
"""

from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple

import numpy as np

_NUMPY_DTYPES = {
    'FLOAT32': np.float32,
    'FLOAT16': np.float16,
    'FLOAT64': np.float64,
    'INT8': np.int8,
    'UINT8': np.uint8,
    'INT16': np.int16,
    'INT32': np.int32,
    'INT64': np.int64,
    'BOOL': np.bool_,
}


@dataclass
class TfliteTensor:
    """One tensor of the TFLite subgraph.

    ``shape`` is the static shape; ``shape_signature`` has -1 where the model left a
    dimension dynamic (None when the file has no signature). ``data`` holds the constant
    contents (already reshaped) or None for activations.
    """

    index: int
    name: str
    dtype: str
    shape: Tuple[int, ...]
    shape_signature: Optional[Tuple[int, ...]]
    data: Optional[np.ndarray]
    quantized: bool


@dataclass
class TfliteOperator:
    """One operator: builtin name, tensor indices (-1 = optional input absent), options."""

    index: int
    opname: str
    inputs: Tuple[int, ...]
    outputs: Tuple[int, ...]
    options: Any = None


@dataclass
class TfliteGraph:
    """The first subgraph of a TFLite model."""

    tensors: List[TfliteTensor]
    operators: List[TfliteOperator]
    inputs: Tuple[int, ...]
    outputs: Tuple[int, ...]
    version: int
    metadata: Dict[str, bytes] = field(default_factory=dict)


def _enum_names(enum_cls):
    """Return ``{value: name}`` for a flatbuffers-generated enum class."""
    return {value: name for name, value in vars(enum_cls).items()
            if not name.startswith('_') and isinstance(value, int)}


def _buffer_bytes(model, model_bytes, buffer_index):
    """Return the raw bytes of buffer ``buffer_index`` (b'' when empty)."""
    buf = model.Buffers(buffer_index)
    if buf is None:
        return b''
    # Models over 2 GiB keep data outside the flatbuffer, addressed by offset and size.
    offset, size = buf.Offset(), buf.Size()
    if offset > 1 and size > 0:
        return bytes(model_bytes[offset:offset + size])
    if buf.DataLength() == 0:
        return b''
    return buf.DataAsNumpy().tobytes()


def _decode_options(tflite, operator, option_names):
    """Return the decoded builtin options table of ``operator`` (None if it has none)."""
    option_type = operator.BuiltinOptionsType()
    table = operator.BuiltinOptions()
    if option_type == 0 or table is None:
        return None
    options = getattr(tflite, option_names[option_type])()
    options.Init(table.Bytes, table.Pos)
    return options


def read_tflite(model_bytes: bytes) -> TfliteGraph:
    """Parse TFLite flatbuffer bytes into a :class:`TfliteGraph` (first subgraph only)."""
    import tflite  # lazy: only needed while converting models

    model = tflite.Model.GetRootAsModel(model_bytes, 0)
    if model.SubgraphsLength() != 1:
        raise ValueError(f'expected one subgraph, found {model.SubgraphsLength()}')
    type_names = _enum_names(tflite.TensorType)
    op_names = _enum_names(tflite.BuiltinOperator)
    option_names = _enum_names(tflite.BuiltinOptions)
    graph = model.Subgraphs(0)

    tensors = []
    for index in range(graph.TensorsLength()):
        tensor = graph.Tensors(index)
        dtype = type_names[tensor.Type()]
        shape = tuple(int(d) for d in tensor.ShapeAsNumpy()) if tensor.ShapeLength() else ()
        signature = (tuple(int(d) for d in tensor.ShapeSignatureAsNumpy())
                     if tensor.ShapeSignatureLength() else None)
        raw = _buffer_bytes(model, model_bytes, tensor.Buffer())
        data = None
        if raw:
            if dtype not in _NUMPY_DTYPES:
                raise ValueError(f'tensor {tensor.Name()!r} has unsupported type {dtype}')
            data = np.frombuffer(raw, dtype=_NUMPY_DTYPES[dtype]).reshape(shape).copy()
        quant = tensor.Quantization()
        quantized = bool(quant is not None and quant.ScaleLength() > 0)
        tensors.append(TfliteTensor(index=index, name=tensor.Name().decode('utf-8'),
                                    dtype=dtype, shape=shape, shape_signature=signature,
                                    data=data, quantized=quantized))

    operators = []
    for index in range(graph.OperatorsLength()):
        operator = graph.Operators(index)
        code = model.OperatorCodes(operator.OpcodeIndex())
        # Schema v3a keeps small codes in the deprecated int8 field; take the larger one.
        builtin = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())
        opname = op_names.get(builtin, f'UNKNOWN_{builtin}')
        if opname == 'CUSTOM':
            opname = 'CUSTOM:' + (code.CustomCode() or b'').decode('utf-8')
        operators.append(TfliteOperator(
            index=index, opname=opname,
            inputs=tuple(int(i) for i in operator.InputsAsNumpy()),
            outputs=tuple(int(i) for i in operator.OutputsAsNumpy()),
            options=_decode_options(tflite, operator, option_names)))

    metadata = {}
    for index in range(model.MetadataLength()):
        entry = model.Metadata(index)
        metadata[entry.Name().decode('utf-8')] = _buffer_bytes(model, model_bytes,
                                                               entry.Buffer())
    return TfliteGraph(tensors=tensors, operators=operators,
                       inputs=tuple(int(i) for i in graph.InputsAsNumpy()),
                       outputs=tuple(int(i) for i in graph.OutputsAsNumpy()),
                       version=model.Version(), metadata=metadata)
