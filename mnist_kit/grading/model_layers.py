"""Read a model's layers: a Keras model or an exported PyTorch program as one list of `Layer`s.

Both frameworks become the same records ("Dense(128, relu)", "Conv2D(32, 3x3, relu)"), which
architecture.py compares with what the assignment asks for.
"""

from __future__ import annotations

from typing import Any

from mnist_kit.grading.architecture import Layer, tidy

__all__ = ["describe_keras", "describe_program"]


def _activation_name(value: Any) -> str:
    if value is None:
        return "linear"
    if isinstance(value, dict):  # a serialised activation object
        value = value.get("config", {}).get("name") or value.get("class_name", "custom")
    name = value if isinstance(value, str) else getattr(value, "__name__", type(value).__name__)
    return {"ReLU": "relu", "Softmax": "softmax", "LeakyReLU": "leaky_relu"}.get(name, name).lower()


def _pair(value: Any) -> tuple[int, int]:
    if isinstance(value, int):
        return (value, value)
    a, b = tuple(value)[:2]
    return (int(a), int(b))


def describe_keras(model: Any) -> list[Layer]:
    """The layers of a Keras model (nested Sequential models are flattened)."""
    layers: list[Layer] = []
    for layer in model.layers:
        name = type(layer).__name__
        config = layer.get_config()
        if name == "InputLayer":
            continue
        if hasattr(layer, "layers") and name in ("Sequential", "Functional"):
            layers.extend(describe_keras(layer))
        elif name == "Dense":
            layers.append(
                Layer(
                    "Dense",
                    size=config["units"],
                    activation=_activation_name(config.get("activation")),
                )
            )
        elif name == "Conv2D":
            layers.append(
                Layer(
                    "Conv2D",
                    size=config["filters"],
                    kernel=_pair(config["kernel_size"]),
                    activation=_activation_name(config.get("activation")),
                )
            )
        elif name in ("MaxPooling2D", "AveragePooling2D"):
            layers.append(Layer(name, kernel=_pair(config["pool_size"])))
        elif name == "Dropout":
            layers.append(Layer("Dropout", rate=float(config["rate"])))
        elif name in ("Activation", "ReLU", "Softmax", "LeakyReLU"):
            layers.append(
                Layer("Activation", activation=_activation_name(config.get("activation", name)))
            )
        elif name == "Reshape" and len(config.get("target_shape", ())) == 1:
            layers.append(Layer("Flatten"))
        else:
            layers.append(Layer(name))
    return tidy(layers)


# ATen operators (as torch.export records them) and what they mean as layers.
_TORCH_ACTIVATIONS = {
    "relu": "relu",
    "relu_": "relu",
    "softmax": "softmax",
    "_softmax": "softmax",
    "log_softmax": "log_softmax",
    "_log_softmax": "log_softmax",
    "sigmoid": "sigmoid",
    "tanh": "tanh",
    "gelu": "gelu",
    "elu": "elu",
    "selu": "selu",
    "silu": "silu",
    "leaky_relu": "leaky_relu",
    "hardtanh": "hardtanh",
}
_TORCH_IGNORED = {
    "getitem", "clone", "contiguous", "detach", "to", "_to_copy", "alias", "sym_size", "t",
    "_assert_tensor_metadata", "_assert_scalar", "sym_constrain_range_for_size", "lift_fresh_copy",
    "dropout_", "expand", "unsqueeze", "squeeze", "permute", "transpose", "type_as",
}  # fmt: skip


def _op_name(target: Any) -> str:
    name = getattr(target, "__name__", str(target))
    return name.split(".")[0]


def describe_program(program: Any) -> list[Layer]:
    """The layers of an exported PyTorch program, read from its graph of ATen operators."""
    signature = program.graph_signature
    weights = {**signature.inputs_to_parameters, **signature.inputs_to_buffers}
    state = program.state_dict

    def shape_of(node: Any) -> tuple[int, ...]:
        target = weights.get(getattr(node, "name", None))
        if target is None or target not in state:
            return ()
        return tuple(state[target].shape)

    layers: list[Layer] = []
    for node in program.graph.nodes:
        if node.op != "call_function":
            continue
        op = _op_name(node.target)
        if op == "linear":
            layers.append(Layer("Dense", size=shape_of(node.args[1])[0], activation="linear"))
        elif op == "conv2d":
            out, _, kh, kw = shape_of(node.args[1])
            layers.append(Layer("Conv2D", size=out, kernel=(kh, kw), activation="linear"))
        elif op in ("max_pool2d", "max_pool2d_with_indices", "avg_pool2d"):
            kind = "AveragePooling2D" if op == "avg_pool2d" else "MaxPooling2D"
            layers.append(Layer(kind, kernel=_pair(node.args[1])))
        elif op in ("adaptive_avg_pool2d", "mean"):
            layers.append(Layer("GlobalAveragePooling2D"))
        elif op in ("flatten", "view", "reshape", "_unsafe_view"):
            layers.append(Layer("Flatten"))
        elif op in ("dropout", "feature_dropout", "native_dropout"):
            layers.append(Layer("Dropout", rate=float(node.args[1])))
        elif op in (
            "batch_norm",
            "_native_batch_norm_legit_no_training",
            "_native_batch_norm_legit_functional",
        ):
            layers.append(Layer("BatchNormalization"))
        elif op in _TORCH_ACTIVATIONS:
            layers.append(Layer("Activation", activation=_TORCH_ACTIVATIONS[op]))
        elif op not in _TORCH_IGNORED:
            layers.append(Layer(f"torch.{op}"))
    return tidy(layers)
