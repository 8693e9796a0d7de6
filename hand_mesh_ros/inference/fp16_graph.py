"""Convert an FP32 ONNX graph to FP16 inside, with its FP32 inputs and outputs kept.

TensorRT 11 builds every network strongly typed: a layer runs in the precision its ONNX
tensors have, and the weakly typed ``BuilderFlag.FP16`` is gone.  FP16 engines there are
built from an FP16 graph, and ONNX Runtime's CUDA provider (which has no FP16 switch) runs
the same graph.  The callers' feeds and results stay float32: a ``Cast`` to float16 follows
each float input and a ``Cast`` back to float32 precedes each float output.

What is converted: float32 initializers, ``Constant`` / ``ConstantOfShape`` values, ``Cast``
targets.  What stays float32: the operands ONNX defines as float only (``Resize`` roi and
scales).  Anything this module does not know how to convert (a float ``value_float``
constant, a random or ``EyeLike`` op with a float dtype, computed ``Resize`` scales) raises
:class:`Fp16ConversionError`, and the caller builds FP32 instead.  ``onnx`` is imported only
when a conversion runs.
"""

import numpy as np

from hand_mesh_ros.inference.base import InferenceError

#: Largest finite float16.
FP16_MAX = 65504.0
#: op type -> input indices that ONNX defines as float32 only.
FLOAT32_ONLY_INPUTS = {'Resize': (1, 2)}
#: ops with a ``dtype`` attribute this converter does not rewrite.
DTYPE_OPS = ('EyeLike', 'RandomNormal', 'RandomUniform', 'RandomNormalLike',
             'RandomUniformLike', 'Multinomial', 'Bernoulli')
SUFFIX = '__fp16'


class Fp16ConversionError(InferenceError):
    """The graph has a construct this converter does not rewrite (the message names it)."""


def convert_to_fp16(model_path):
    """Return the serialised FP16 version of an FP32 ONNX model file.

    Args:
        model_path: the FP32 ``.onnx`` file.

    Returns:
        bytes of a valid ONNX model (checked, strict shape inference) computing in float16,
        with the same input and output names, shapes and float32 types.

    Raises:
        Fp16ConversionError: the graph holds something this converter cannot rewrite, or
            the result does not type-check; or ``onnx`` is not installed.
    """
    try:
        import onnx
        from onnx import numpy_helper
    except ImportError as exc:
        raise Fp16ConversionError(f'FP16 graph needs the onnx package ({exc})') from exc
    model = onnx.load(str(model_path))
    graph = model.graph
    if any(node.op_type in ('If', 'Loop', 'Scan') for node in graph.node):
        raise Fp16ConversionError(f'{model_path}: subgraphs (If/Loop/Scan) are not converted')
    float_type = onnx.TensorProto.FLOAT
    half_type = onnx.TensorProto.FLOAT16
    keep = _float32_only_names(graph)
    for index, init in enumerate(graph.initializer):
        if init.data_type == float_type and init.name not in keep:
            graph.initializer[index].CopyFrom(
                numpy_helper.from_array(_to_half(numpy_helper.to_array(init)), init.name))
    for node in graph.node:
        _convert_node(node, keep, onnx, numpy_helper, float_type, half_type, model_path)
    nodes = list(graph.node)
    head, tail = [], []
    for value in graph.input:
        if value.type.tensor_type.elem_type == float_type:
            _rename_uses(nodes, value.name, value.name + SUFFIX)
            head.append(onnx.helper.make_node('Cast', [value.name], [value.name + SUFFIX],
                                              to=half_type, name=value.name + '_to_fp16'))
    for value in graph.output:
        if value.type.tensor_type.elem_type == float_type:
            _rename_uses(nodes, value.name, value.name + SUFFIX, outputs=True)
            tail.append(onnx.helper.make_node('Cast', [value.name + SUFFIX], [value.name],
                                              to=float_type, name=value.name + '_to_fp32'))
    del graph.node[:]
    graph.node.extend(head + nodes + tail)
    del graph.value_info[:]
    try:
        onnx.checker.check_model(model)
        onnx.shape_inference.infer_shapes(model, check_type=True, strict_mode=True)
    except Exception as exc:  # noqa: B902 - onnx raises checker and inference errors
        raise Fp16ConversionError(
            f'{model_path}: the FP16 graph does not type-check: {_first_line(exc)}') from exc
    return model.SerializeToString()


def _to_half(array):
    """Cast to float16, clipping to the finite float16 range (never creating inf)."""
    return np.clip(array, -FP16_MAX, FP16_MAX).astype(np.float16)


def _float32_only_names(graph):
    """Return the tensor names that must stay float32 (fed to float-only operands)."""
    keep = set()
    for node in graph.node:
        for index in FLOAT32_ONLY_INPUTS.get(node.op_type, ()):
            if index < len(node.input) and node.input[index]:
                keep.add(node.input[index])
    constants = {init.name for init in graph.initializer}
    constants |= {out for node in graph.node if node.op_type == 'Constant'
                  for out in node.output}
    computed = sorted(keep - constants)
    if computed:
        raise Fp16ConversionError(
            f'float32-only operands computed in the graph are not converted: {computed}')
    return keep


def _convert_node(node, keep, onnx, numpy_helper, float_type, half_type, model_path):
    """Rewrite one node's float32 attributes to float16 (in place)."""
    where = f'{model_path}: node {node.name or node.op_type!r} ({node.op_type})'
    if node.op_type in DTYPE_OPS:
        raise Fp16ConversionError(f'{where}: dtype attributes are not converted')
    if node.op_type == 'Constant' and any(out in keep for out in node.output):
        return
    for attr in node.attribute:
        if attr.name in ('value_float', 'value_floats'):
            raise Fp16ConversionError(f'{where}: {attr.name} constants are not converted')
        if attr.type == onnx.AttributeProto.TENSOR and attr.t.data_type == float_type:
            half = _to_half(numpy_helper.to_array(attr.t))
            attr.t.CopyFrom(numpy_helper.from_array(half, attr.t.name))
        elif attr.type == onnx.AttributeProto.GRAPH:
            raise Fp16ConversionError(f'{where}: subgraph attributes are not converted')
        elif node.op_type == 'Cast' and attr.name == 'to' and attr.i == float_type:
            attr.i = half_type


def _rename_uses(nodes, old, new, outputs=False):
    """Rename a tensor in the node inputs (and, with ``outputs``, in node outputs too)."""
    for node in nodes:
        for index, name in enumerate(node.input):
            if name == old:
                node.input[index] = new
        if outputs:
            for index, name in enumerate(node.output):
                if name == old:
                    node.output[index] = new


def _first_line(exc):
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
