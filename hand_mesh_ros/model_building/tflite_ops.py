"""TFLite builtin operators rebuilt as ONNX nodes (opset 17).

Each converter takes the :class:`~hand_mesh_ros.model_building.tflite_to_onnx.ConversionContext`
and one :class:`~hand_mesh_ros.model_building.tflite_graph.TfliteOperator`. The set covers
every op in MediaPipe's palm detection and hand landmark models (full and lite) plus a few
element-wise ops with an exact ONNX equivalent; anything else fails loudly at conversion.
"""

import math

import numpy as np

NCHW = 'NCHW'
NATIVE = 'NATIVE'
_NHWC_AXIS_IN_NCHW = {0: 0, 1: 2, 2: 3, 3: 1}
_PADDING_SAME, _PADDING_VALID = 0, 1


def _same_pads(in_size, kernel, stride, dilation):
    """Return (before, after) padding of TFLite SAME for one spatial axis."""
    out_size = math.ceil(in_size / stride)
    effective = (kernel - 1) * dilation + 1
    total = max((out_size - 1) * stride + effective - in_size, 0)
    return total // 2, total - total // 2


def _spatial_pads(padding, in_hw, kernel_hw, stride_hw, dilation_hw=(1, 1)):
    """Return ONNX ``pads`` [top, left, bottom, right] for TFLite ``padding``."""
    if padding == _PADDING_VALID:
        return [0, 0, 0, 0]
    if padding != _PADDING_SAME:
        raise NotImplementedError(f'padding mode {padding}')
    top, bottom = _same_pads(in_hw[0], kernel_hw[0], stride_hw[0], dilation_hw[0])
    left, right = _same_pads(in_hw[1], kernel_hw[1], stride_hw[1], dilation_hw[1])
    return [top, left, bottom, right]


def _nchw_const(value, out_rank=4):
    """Return constant ``value`` (NHWC-broadcastable) re-laid out to broadcast in NCHW."""
    value = np.asarray(value)
    if value.ndim > out_rank:
        raise ValueError(f'constant of rank {value.ndim} cannot broadcast to rank {out_rank}')
    value = value.reshape((1,) * (out_rank - value.ndim) + value.shape)
    return np.ascontiguousarray(np.transpose(value, (0, 3, 1, 2)))


def _require_const(ctx, index, what):
    value = ctx.const(index)
    if value is None:
        raise NotImplementedError(f'{what} must be a constant tensor '
                                  f'({ctx.tensor(index).name!r} is not)')
    return value


def _float32(value):
    return np.asarray(value, dtype=np.float32)


def convert_dequantize(ctx, op):
    """Fold DEQUANTIZE of a constant fp16 tensor into a float32 constant."""
    source = ctx.const(op.inputs[0])
    tensor = ctx.tensor(op.inputs[0])
    if source is None or tensor.quantized or source.dtype != np.float16:
        raise NotImplementedError('only DEQUANTIZE of constant float16 weights is supported '
                                  f'({tensor.name!r})')
    ctx.fold(op.outputs[0], source.astype(np.float32))


def _convolution(ctx, op, weights_onnx, group):
    options = op.options
    x_index, out_index = op.inputs[0], op.outputs[0]
    in_shape = ctx.tensor(x_index).shape
    kernel_hw = weights_onnx.shape[2:]
    stride_hw = (options.StrideH(), options.StrideW())
    dilation_hw = (options.DilationHFactor(), options.DilationWFactor())
    inputs = [ctx.get(x_index, NCHW), ctx.add_initializer(weights_onnx, 'weights')]
    if len(op.inputs) > 2 and op.inputs[2] >= 0:
        bias = _require_const(ctx, op.inputs[2], 'convolution bias')
        inputs.append(ctx.add_initializer(_float32(bias), 'bias'))
    activation = options.FusedActivationFunction()
    raw = ctx.op_output(out_index, NCHW, activation)
    ctx.add_node('Conv', inputs, [raw], kernel_shape=list(kernel_hw),
                 strides=list(stride_hw), dilations=list(dilation_hw), group=group,
                 pads=_spatial_pads(options.Padding(), in_shape[1:3], kernel_hw, stride_hw,
                                    dilation_hw))
    ctx.finish_with_activation(activation, raw, out_index, NCHW)


def convert_conv_2d(ctx, op):
    """CONV_2D: weights [O, kH, kW, I] -> ONNX [O, I, kH, kW]; grouped when I < C_in."""
    weights = _float32(_require_const(ctx, op.inputs[1], 'CONV_2D weights'))
    channels_in = ctx.tensor(op.inputs[0]).shape[3]
    group = channels_in // weights.shape[3]
    _convolution(ctx, op, np.transpose(weights, (0, 3, 1, 2)), group)


def convert_depthwise_conv_2d(ctx, op):
    """DEPTHWISE_CONV_2D: weights [1, kH, kW, C*M] -> ONNX [C*M, 1, kH, kW], group=C."""
    weights = _float32(_require_const(ctx, op.inputs[1], 'DEPTHWISE_CONV_2D weights'))
    channels_in = ctx.tensor(op.inputs[0]).shape[3]
    _convolution(ctx, op, np.transpose(weights, (3, 0, 1, 2)), channels_in)


def _pool(ctx, op, onnx_op, **extra):
    options = op.options
    x_index, out_index = op.inputs[0], op.outputs[0]
    kernel_hw = (options.FilterHeight(), options.FilterWidth())
    stride_hw = (options.StrideH(), options.StrideW())
    pads = _spatial_pads(options.Padding(), ctx.tensor(x_index).shape[1:3], kernel_hw,
                         stride_hw)
    activation = options.FusedActivationFunction()
    raw = ctx.op_output(out_index, NCHW, activation)
    ctx.add_node(onnx_op, [ctx.get(x_index, NCHW)], [raw], kernel_shape=list(kernel_hw),
                 strides=list(stride_hw), pads=pads, **extra)
    ctx.finish_with_activation(activation, raw, out_index, NCHW)


def convert_max_pool_2d(ctx, op):
    """MAX_POOL_2D (SAME padding never wins a max, as in TFLite)."""
    _pool(ctx, op, 'MaxPool')


def convert_average_pool_2d(ctx, op):
    """AVERAGE_POOL_2D (TFLite averages over valid pixels only: count_include_pad=0)."""
    _pool(ctx, op, 'AveragePool', count_include_pad=0)


def _binary(onnx_op):
    def convert(ctx, op):
        out_index = op.outputs[0]
        layout = NCHW if ctx.rank(out_index) == 4 else NATIVE
        if layout == NCHW:
            for index in op.inputs:
                if ctx.const(index) is None and ctx.rank(index) not in (0, 4):
                    layout = NATIVE
        names = []
        for index in op.inputs:
            value = ctx.const(index)
            if value is not None and layout == NCHW and value.ndim != 4:
                names.append(ctx.add_initializer(_nchw_const(value), 'operand'))
            else:
                names.append(ctx.get(index, layout))
        fused = getattr(op.options, 'FusedActivationFunction', None)
        activation = fused() if fused is not None else 0
        raw = ctx.op_output(out_index, layout, activation)
        ctx.add_node(onnx_op, names, [raw])
        ctx.finish_with_activation(activation, raw, out_index, layout)
    convert.__doc__ = f'Element-wise binary op with broadcasting -> ONNX {onnx_op}.'
    return convert


def _unary(onnx_op, **attrs):
    def convert(ctx, op):
        x_index, out_index = op.inputs[0], op.outputs[0]
        layout = ctx.preferred_layout([x_index])
        ctx.add_node(onnx_op, [ctx.get(x_index, layout)],
                     [ctx.output_name(out_index, layout)], **attrs)
    convert.__doc__ = f'Element-wise unary op -> ONNX {onnx_op} (layout preserved).'
    return convert


def convert_relu6(ctx, op):
    """RELU6 as Clip(0, 6) (layout preserved)."""
    x_index, out_index = op.inputs[0], op.outputs[0]
    layout = ctx.preferred_layout([x_index])
    ctx.emit_activation(3, ctx.get(x_index, layout), ctx.output_name(out_index, layout))


def convert_prelu(ctx, op):
    """PRELU with an NHWC-broadcast slope (e.g. [1, 1, C]).

    With ``ctx.decompose_prelu`` it becomes Relu(x) + slope * (x - Relu(x)), which is exact
    (one of the two terms is zero) and runs ~1.5x faster than ONNX Runtime's broadcasting
    PRelu kernel on CPU; otherwise a single ONNX PRelu.
    """
    x_index, out_index = op.inputs[0], op.outputs[0]
    alpha = _float32(_require_const(ctx, op.inputs[1], 'PRELU slope'))
    layout = NCHW if ctx.rank(x_index) == 4 else NATIVE
    slope = ctx.add_initializer(_nchw_const(alpha) if layout == NCHW else alpha, 'slope')
    x_name, y_name = ctx.get(x_index, layout), ctx.output_name(out_index, layout)
    if not ctx.decompose_prelu:
        ctx.add_node('PRelu', [x_name, slope], [y_name])
        return
    positive, negative, scaled = (ctx.fresh_name(f'{y_name}__{part}')
                                  for part in ('pos', 'neg', 'scaled'))
    ctx.add_node('Relu', [x_name], [positive])
    ctx.add_node('Sub', [x_name, positive], [negative])
    ctx.add_node('Mul', [negative, slope], [scaled])
    ctx.add_node('Add', [positive, scaled], [y_name])


def convert_pad(ctx, op):
    """PAD / PADV2 with constant paddings [rank, 2] (zero or the given constant value)."""
    x_index, out_index = op.inputs[0], op.outputs[0]
    paddings = np.asarray(_require_const(ctx, op.inputs[1], 'PAD paddings'), dtype=np.int64)
    layout = NCHW if ctx.rank(x_index) == 4 else NATIVE
    if layout == NCHW:
        paddings = paddings[[0, 3, 1, 2]]
    inputs = [ctx.get(x_index, layout),
              ctx.add_initializer(np.concatenate([paddings[:, 0], paddings[:, 1]]), 'pads')]
    if len(op.inputs) > 2 and op.inputs[2] >= 0:
        fill = _require_const(ctx, op.inputs[2], 'PADV2 constant value')
        inputs.append(ctx.add_initializer(_float32(fill).reshape(()), 'pad_value'))
    ctx.add_node('Pad', inputs, [ctx.output_name(out_index, layout)], mode='constant')


def _resize(ctx, op, mode, transform, **extra):
    x_index, out_index = op.inputs[0], op.outputs[0]
    size_hw = np.asarray(_require_const(ctx, op.inputs[1], 'resize size'), dtype=np.int64)
    x_name = ctx.get(x_index, NCHW)
    shape = ctx.fresh_name('resize_shape')
    ctx.add_node('Shape', [x_name], [shape], start=0, end=2)
    sizes = ctx.fresh_name('resize_sizes')
    ctx.add_node('Concat', [shape, ctx.add_initializer(size_hw.reshape(2), 'size_hw')],
                 [sizes], axis=0)
    ctx.add_node('Resize', [x_name, '', '', sizes], [ctx.output_name(out_index, NCHW)],
                 mode=mode, coordinate_transformation_mode=transform, **extra)


def convert_resize_bilinear(ctx, op):
    """RESIZE_BILINEAR: half_pixel_centers -> 'half_pixel', align_corners, else 'asymmetric'."""
    options = op.options
    if options.AlignCorners():
        transform = 'align_corners'
    elif options.HalfPixelCenters():
        transform = 'half_pixel'
    else:
        transform = 'asymmetric'
    _resize(ctx, op, 'linear', transform)


def convert_reshape(ctx, op):
    """RESHAPE in the TFLite (NHWC) element order; batch copied through when dynamic."""
    x_index, out_index = op.inputs[0], op.outputs[0]
    target = None
    if len(op.inputs) > 1 and op.inputs[1] >= 0:
        target = ctx.const(op.inputs[1])
    if target is None and op.options is not None and op.options.NewShapeLength():
        target = op.options.NewShapeAsNumpy()
    if target is None:
        target = ctx.tensor(out_index).shape
    target = np.asarray(target, dtype=np.int64).copy()
    if ctx.dynamic_batch and target.size and ctx.tensor(x_index).shape[:1] == (1,):
        if target[0] == 1:
            target[0] = 0  # ONNX Reshape: 0 copies the input's (batch) dimension
        elif target[0] != -1:
            raise NotImplementedError(f'RESHAPE {ctx.tensor(x_index).shape} -> '
                                      f'{target.tolist()} mixes the batch axis')
    ctx.add_node('Reshape', [ctx.get(x_index, NATIVE), ctx.add_initializer(target, 'shape')],
                 [ctx.output_name(out_index, NATIVE)])


def convert_concatenation(ctx, op):
    """CONCATENATION along a TFLite axis (remapped when the inputs are NCHW)."""
    options = op.options
    out_index = op.outputs[0]
    rank = ctx.rank(out_index)
    axis = options.Axis() % rank
    layout = ctx.preferred_layout(op.inputs) if rank == 4 else NATIVE
    onnx_axis = _NHWC_AXIS_IN_NCHW[axis] if layout == NCHW else axis
    activation = options.FusedActivationFunction()
    raw = ctx.op_output(out_index, layout, activation)
    ctx.add_node('Concat', [ctx.get(index, layout) for index in op.inputs], [raw],
                 axis=onnx_axis)
    ctx.finish_with_activation(activation, raw, out_index, layout)


def convert_fully_connected(ctx, op):
    """FULLY_CONNECTED: y = x W^T + b with W [O, K]; input flattened to [-1, K]."""
    options = op.options
    if options.WeightsFormat() != 0:
        raise NotImplementedError('shuffled FULLY_CONNECTED weights are not supported')
    x_index, out_index = op.inputs[0], op.outputs[0]
    weights = _float32(_require_const(ctx, op.inputs[1], 'FULLY_CONNECTED weights'))
    units, depth = weights.shape
    bias = np.zeros(units, np.float32)
    if len(op.inputs) > 2 and op.inputs[2] >= 0:
        bias = _float32(_require_const(ctx, op.inputs[2], 'FULLY_CONNECTED bias'))
    x_name = ctx.get(x_index, NATIVE)
    activation = options.FusedActivationFunction()
    raw = ctx.op_output(out_index, NATIVE, activation)
    if ctx.rank(x_index) != 2 and options.KeepNumDims():
        product = ctx.fresh_name('fc_matmul')
        ctx.add_node('MatMul', [x_name, ctx.add_initializer(weights.T.copy(), 'fc_wt')],
                     [product])
        ctx.add_node('Add', [product, ctx.add_initializer(bias, 'fc_bias')], [raw])
    else:
        if ctx.rank(x_index) != 2:
            flat = ctx.fresh_name('fc_flat')
            ctx.add_node('Reshape', [x_name, ctx.add_initializer(
                np.array([-1, depth], np.int64), 'fc_shape')], [flat])
            x_name = flat
        ctx.add_node('Gemm', [x_name, ctx.add_initializer(weights, 'fc_w'),
                              ctx.add_initializer(bias, 'fc_bias')], [raw], transB=1)
    ctx.finish_with_activation(activation, raw, out_index, NATIVE)


def convert_mean(ctx, op):
    """MEAN over constant axes (opset 17 ReduceMean with an axes attribute)."""
    x_index, out_index = op.inputs[0], op.outputs[0]
    rank = ctx.rank(x_index)
    axes = sorted(int(a) % rank for a in
                  np.atleast_1d(_require_const(ctx, op.inputs[1], 'MEAN axes')))
    keep = bool(op.options.KeepDims())
    layout = ctx.preferred_layout([x_index]) if rank == 4 else NATIVE
    if layout == NCHW and not keep:
        kept_nhwc = [a for a in range(4) if a not in axes]
        kept_nchw = [a for a in (0, 3, 1, 2) if a not in axes]
        if kept_nhwc != kept_nchw:
            layout = NATIVE  # the reduced result's axis order would differ from TFLite's
    onnx_axes = [_NHWC_AXIS_IN_NCHW[a] for a in axes] if layout == NCHW else axes
    out_layout = layout if keep else NATIVE
    ctx.add_node('ReduceMean', [ctx.get(x_index, layout)],
                 [ctx.output_name(out_index, out_layout)], axes=onnx_axes,
                 keepdims=int(keep))


CONVERTERS = {
    'DEQUANTIZE': convert_dequantize,
    'CONV_2D': convert_conv_2d,
    'DEPTHWISE_CONV_2D': convert_depthwise_conv_2d,
    'MAX_POOL_2D': convert_max_pool_2d,
    'AVERAGE_POOL_2D': convert_average_pool_2d,
    'ADD': _binary('Add'),
    'SUB': _binary('Sub'),
    'MUL': _binary('Mul'),
    'DIV': _binary('Div'),
    'MAXIMUM': _binary('Max'),
    'MINIMUM': _binary('Min'),
    'PRELU': convert_prelu,
    'RELU': _unary('Relu'),
    'RELU6': convert_relu6,
    'LOGISTIC': _unary('Sigmoid'),
    'TANH': _unary('Tanh'),
    'PAD': convert_pad,
    'PADV2': convert_pad,
    'RESIZE_BILINEAR': convert_resize_bilinear,
    'RESHAPE': convert_reshape,
    'CONCATENATION': convert_concatenation,
    'FULLY_CONNECTED': convert_fully_connected,
    'MEAN': convert_mean,
}
