"""Convert a TFLite model to ONNX with ``onnx.helper`` (no TensorFlow).

TFLite keeps activations in NHWC; ONNX convolutions want NCHW. Every 4-D activation is kept
in whichever layout its producer made, and a Transpose is inserted (once per tensor and
layout) only where a consumer needs the other one, so a chain of convolutions runs in NCHW
without transposes between them. The graph's inputs and outputs keep the TFLite tensor names
and the TFLite (NHWC) layout, so callers feed the ONNX model the same arrays as the TFLite
interpreter. fp16 weights behind DEQUANTIZE are folded into float32 initializers.
"""

import hashlib
from typing import Dict, List, Optional

import numpy as np

from hand_mesh_ros.model_building.tflite_graph import read_tflite, TfliteGraph
from hand_mesh_ros.model_building.tflite_ops import CONVERTERS

CONVERTER_VERSION = '1.1.0'
NCHW = 'NCHW'
NATIVE = 'NATIVE'
_TO_NCHW = (0, 3, 1, 2)
_TO_NHWC = (0, 2, 3, 1)
_ONNX_TYPES = {'FLOAT32': 'FLOAT', 'INT32': 'INT32', 'INT64': 'INT64', 'UINT8': 'UINT8',
               'INT8': 'INT8', 'BOOL': 'BOOL', 'FLOAT16': 'FLOAT16'}


class ConversionContext:
    """Graph-building state shared by the op converters (see ``tflite_ops``)."""

    def __init__(self, graph: TfliteGraph, *, dynamic_batch: bool, decompose_prelu: bool):
        """Prepare to convert ``graph``; ``dynamic_batch`` makes axis 0 of the I/O 'N'."""
        self.graph = graph
        self.dynamic_batch = dynamic_batch
        self.decompose_prelu = decompose_prelu
        self.nodes = []
        self.initializers = []
        self._values: Dict[int, Dict[str, str]] = {}
        self._folded: Dict[int, np.ndarray] = {}
        self._used_names = set()
        self._native_names: Dict[int, str] = {}
        for index in list(graph.inputs) + list(graph.outputs):
            self._native_names[index] = self._claim(graph.tensors[index].name)

    # ----------------------------------------------------------------- names and constants
    def _claim(self, name: str) -> str:
        """Reserve a unique ONNX value name based on ``name``."""
        candidate, counter = name, 1
        while candidate in self._used_names:
            candidate = f'{name}__{counter}'
            counter += 1
        self._used_names.add(candidate)
        return candidate

    def fresh_name(self, base: str) -> str:
        """Return a new unique value name derived from ``base``."""
        return self._claim(base)

    def tensor(self, index: int):
        """Return the :class:`TfliteTensor` with ``index``."""
        return self.graph.tensors[index]

    def rank(self, index: int) -> int:
        """Return the rank of TFLite tensor ``index``."""
        return len(self.graph.tensors[index].shape)

    def const(self, index: int) -> Optional[np.ndarray]:
        """Return the constant value of tensor ``index`` (after folding), else None."""
        if index < 0:
            return None
        if index in self._folded:
            return self._folded[index]
        return self.graph.tensors[index].data

    def fold(self, index: int, value: np.ndarray):
        """Record that tensor ``index`` is the constant ``value`` (emits no node)."""
        self._folded[index] = value

    def add_initializer(self, value: np.ndarray, base: str) -> str:
        """Add ``value`` as an initializer and return its name."""
        from onnx import numpy_helper
        name = self.fresh_name(base)
        self.initializers.append(numpy_helper.from_array(np.ascontiguousarray(value), name))
        return name

    def add_node(self, op_type: str, inputs: List[str], outputs: List[str], **attrs):
        """Append an ONNX node."""
        from onnx import helper
        name = self.fresh_name(f'{op_type}_{len(self.nodes)}')
        self.nodes.append(helper.make_node(op_type, inputs, outputs, name=name, **attrs))

    # ----------------------------------------------------------------------- activations
    def has_layout(self, index: int, layout: str) -> bool:
        """Return whether tensor ``index`` already exists in ``layout``."""
        return layout in self._values.get(index, {})

    def get(self, index: int, layout: str = NATIVE) -> str:
        """Return the ONNX name of tensor ``index`` in ``layout``, transposing if needed.

        Constants become initializers (NCHW constants of rank 4 are transposed).
        """
        if self.rank(index) != 4:
            layout = NATIVE
        available = self._values.get(index, {})
        if layout in available:
            return available[layout]
        value = self.const(index)
        if value is not None:
            if layout == NCHW:
                value = np.transpose(value, _TO_NCHW)
            name = self.add_initializer(value, self.tensor(index).name)
            self._values.setdefault(index, {})[layout] = name
            return name
        if not available:
            raise KeyError(f'tensor {self.tensor(index).name!r} used before it is produced')
        source_layout, source = next(iter(available.items()))
        perm = _TO_NCHW if layout == NCHW else _TO_NHWC
        name = self.output_name(index, layout)
        self.add_node('Transpose', [source], [name], perm=list(perm))
        return name

    def output_name(self, index: int, layout: str) -> str:
        """Return (and record) the ONNX name an op writes tensor ``index`` to in ``layout``."""
        if self.rank(index) != 4:
            layout = NATIVE
        if layout == NATIVE:
            name = self._native_names.get(index) or self.fresh_name(self.tensor(index).name)
        else:
            name = self.fresh_name(self.tensor(index).name + '__nchw')
        self._values.setdefault(index, {})[layout] = name
        return name

    def preferred_layout(self, indices) -> str:
        """Return NCHW if any non-constant 4-D tensor in ``indices`` is NCHW already."""
        for index in indices:
            if index >= 0 and self.const(index) is None and self.has_layout(index, NCHW):
                return NCHW
        return NATIVE

    def emit_activation(self, activation: int, source: str, target: str):
        """Emit TFLite fused ``activation`` from ``source`` into ``target``."""
        if activation == 0:
            self.add_node('Identity', [source], [target])
        elif activation == 1:
            self.add_node('Relu', [source], [target])
        elif activation in (2, 3):
            low, high = (-1.0, 1.0) if activation == 2 else (0.0, 6.0)
            self.add_node('Clip', [source, self.add_initializer(np.float32(low), 'clip_min'),
                                   self.add_initializer(np.float32(high), 'clip_max')],
                          [target])
        elif activation == 4:
            self.add_node('Tanh', [source], [target])
        else:
            raise NotImplementedError(f'fused activation {activation} is not supported')

    def finish_with_activation(self, activation: int, raw_name: str, index: int, layout: str):
        """Write ``raw_name`` through ``activation`` into tensor ``index`` (no-op if NONE)."""
        if activation == 0:
            return raw_name
        target = self.output_name(index, layout)
        self.emit_activation(activation, raw_name, target)
        return target

    def op_output(self, index: int, layout: str, activation: int) -> str:
        """Return the name an op should write to before its fused ``activation``."""
        if activation == 0:
            return self.output_name(index, layout)
        return self.fresh_name(self.tensor(index).name + '__preact')

    def batch_shape(self, shape) -> List:
        """Return ``shape`` as ONNX dims with axis 0 symbolic when the batch is dynamic."""
        dims = [int(d) for d in shape]
        if self.dynamic_batch and dims and dims[0] == 1:
            dims[0] = 'N'
        return dims


def convert_graph(graph: TfliteGraph, *, dynamic_batch: bool = True, opset: int = 17,
                  graph_name: str = 'tflite_model', decompose_prelu: bool = True):
    """Convert a parsed TFLite graph to an ``onnx.ModelProto`` (checked)."""
    import onnx
    from onnx import helper

    ctx = ConversionContext(graph, dynamic_batch=dynamic_batch,
                            decompose_prelu=decompose_prelu)
    inputs = []
    for index in graph.inputs:
        tensor = graph.tensors[index]
        name = ctx.output_name(index, NATIVE)
        inputs.append(helper.make_tensor_value_info(
            name, getattr(onnx.TensorProto, _ONNX_TYPES[tensor.dtype]),
            ctx.batch_shape(tensor.shape)))
    for op in graph.operators:
        converter = CONVERTERS.get(op.opname)
        if converter is None:
            raise NotImplementedError(f'TFLite op {op.opname} (operator {op.index}) has no '
                                      f'ONNX converter; supported: {sorted(CONVERTERS)}')
        converter(ctx, op)
    outputs = []
    for index in graph.outputs:
        tensor = graph.tensors[index]
        name = ctx.get(index, NATIVE)
        if name != tensor.name:
            raise ValueError(f'output {tensor.name!r} could not keep its name (got {name!r})')
        outputs.append(helper.make_tensor_value_info(
            name, getattr(onnx.TensorProto, _ONNX_TYPES[tensor.dtype]),
            ctx.batch_shape(tensor.shape)))
    onnx_graph = helper.make_graph(ctx.nodes, graph_name, inputs, outputs,
                                   initializer=ctx.initializers)
    model = helper.make_model(onnx_graph, opset_imports=[helper.make_opsetid('', opset)],
                              producer_name='hand_mesh_ros.tflite_to_onnx',
                              producer_version=CONVERTER_VERSION)
    model.ir_version = min(model.ir_version, 8)  # IR 8 is what opset 17 shipped with
    onnx.checker.check_model(model, full_check=True)
    return model


def convert_tflite_to_onnx(tflite_bytes: bytes, *, dynamic_batch: bool = True,
                           opset: int = 17, graph_name: str = 'tflite_model',
                           decompose_prelu: bool = True):
    """Convert TFLite flatbuffer bytes to an ``onnx.ModelProto``.

    ``dynamic_batch`` turns a batch dimension of 1 on the inputs and outputs into a symbolic
    'N' so a stack of crops runs in one call; it is valid for models whose ops treat batch
    items independently (all the MediaPipe hand models). ``decompose_prelu`` writes PRELU
    as Relu/Sub/Mul/Add (exact, faster on ONNX Runtime CPU) instead of one PRelu node.
    """
    graph = read_tflite(tflite_bytes)
    model = convert_graph(graph, dynamic_batch=dynamic_batch, opset=opset,
                          graph_name=graph_name, decompose_prelu=decompose_prelu)
    model.doc_string = ('Converted from TFLite sha256 '
                        f'{hashlib.sha256(tflite_bytes).hexdigest()} by hand_mesh_ros '
                        f'tflite_to_onnx {CONVERTER_VERSION}')
    return model
