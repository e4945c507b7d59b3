"""Vision family of the real-ports corpus: torchvision 0.28 vs paddle.vision.

Every architecture both libraries ship, each side built from its own library's constructor
(random init, no downloads). The truth is written by hand from the two libraries' source:

- paddle.vision's ResNet/ResNeXt/Wide-ResNet, VGG and MobileNetV2 keep torchvision's module
  names (``layer1.0.conv1``, ``features.3``...); BatchNorm's ``running_mean``/``running_var`` are
  paddle's ``_mean``/``_variance``; torch's ``num_batches_tracked`` has no paddle counterpart and
  cannot change an eval output (left out of ``weights``).
- AlexNet, SqueezeNet, ShuffleNetV2, InceptionV3, DenseNet and MobileNetV3 are written
  differently (``_conv1._conv``, ``MakeFire``, ``2_1._conv_dw_1``, ``inception_block_list.0``,
  ``db_conv_2.conv2_1.bn_ac_func1``, ``blocks.0.bottleneck_conv``...): their maps below are
  spelled out.
- Where paddle fuses an activation into a BatchNorm (DenseNet's ``BatchNorm(act="relu")``),
  torch's ReLU module pairs with it (the same output); torch's BatchNorm, whose output is
  taken before the ReLU, has no counterpart: its tensors go to the fused norm (``held``).
- Where one side applies an activation or pooling functionally (paddle's ``F.relu`` in
  SqueezeNet's ``MakeFireConv`` and AlexNet's ``_conv3``/``_conv4``; torchvision's
  ``adaptive_avg_pool2d`` in MobileNetV2, ``x.mean`` in ShuffleNetV2), the module of the other
  side has no counterpart and is not in ``modules``.
- A layer called several times is one pair per call: ``_pool#2`` is the second call of paddle
  SqueezeNet's one shared ``_pool``; a module run k times on both sides (ResNet's block ReLU) is
  written ``relu#1``..``relu#k`` on both (``tests.ports.eager.with_call_sites``).

True differences (checked eagerly, ``tests/ports/test_vision_ports.py``): SqueezeNet's torch
pools round up (``ceil_mode=True``), paddle's down; SqueezeNet 1.1's first conv is unpadded in
torchvision, padded by 1 in paddle.vision; AlexNet's, SqueezeNet's and InceptionV3's paddle
Dropout is ``downscale_in_infer`` (eval output times 1 - p), torch's is the identity at eval;
InceptionV3's 94 BatchNorms have eps 0.001 in torchvision (``BasicConv2d``), 1e-5 in
paddle.vision (``ConvNormActivation``'s default). DenseNet121 and MobileNetV3 (small, large)
agree after a hand conversion.

Not in the corpus: paddle.vision's MobileNetV1 and LeNet (torchvision ships neither). GoogLeNet,
which both ship, is not a port of the other: torchvision's puts a BatchNorm and a ReLU after
every conv (``BasicConv2d``), paddle.vision's has no BatchNorm at all and one ReLU after each
Inception block's concatenation; torchvision's "5x5" branch is a 3x3 conv (its known bug), its
pools round up (``ceil_mode=True``), its fourth pool is 2x2, and paddle's model returns two
auxiliary heads' outputs besides: no weight map can make the two compute the same thing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from padiff_ir._paths import join
from tests.ports import BuiltPair, Copy, PortPair, TrueDifference, import_torchvision
from tests.ports.eager import with_call_sites

__all__ = ["PAIRS", "import_torchvision", "parameter_free"]

SEED = 20


def _paddle_models() -> Any:
    import paddle.vision.models as models

    return models


def parameter_free(model: Any, path: str) -> bool:
    """Whether the torch module at ``path`` holds no parameter (a pool, a dropout, a ReLU)."""
    return not any(True for _ in model.get_submodule(path).parameters())


def _away_from_init(model: Any, inputs: np.ndarray, seed: int) -> None:
    """BatchNorm scales, shifts and running statistics drawn away from their init (seeded).

    Scaled as in a trained network: as the example input reaches each BatchNorm, its running
    variance is set to the input's mean square times U(0.5, 1.5) per channel, its running mean
    to N(0, 0.1) times the input's root mean square, so activations stay of order one through
    fifty layers (statistics of unit scale make a ResNet-50's logits reach 500, where float32
    rounding alone exceeds any tolerance). The mean is not the input's own, so normalising
    cancels no large value against another.
    """
    import torch

    rng = np.random.default_rng(seed)

    def calibrate(module: Any, args: tuple[Any, ...]) -> None:
        n = module.num_features
        x = args[0].detach().double()
        power = float((x * x).mean()) + 1e-3  # the input's mean square, over every channel
        for name, value in (
            ("weight", rng.uniform(0.5, 1.5, n)),
            ("bias", rng.normal(0.0, 0.1, n)),
            ("running_mean", rng.normal(0.0, 0.1, n) * np.sqrt(power)),
            ("running_var", rng.uniform(0.5, 1.5, n) * power),
        ):
            getattr(module, name).copy_(torch.from_numpy(value.astype("float32")))

    norms = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    handles = [m.register_forward_pre_hook(calibrate) for m in norms]
    try:
        with torch.no_grad():
            model(torch.from_numpy(inputs))
    finally:
        for handle in handles:
            handle.remove()


_TENSOR_NAMES = {"running_mean": "_mean", "running_var": "_variance"}


def _weights(torch_model: Any, modules: dict[str, str]) -> dict[str, tuple[str, Copy]]:
    """Every parameter and persistent buffer of the mapped torch modules -> paddle's.

    The paddle module holds the same tensors under paddle's names (``_mean``, ``_variance``);
    a Linear's weight goes across transposed. ``num_batches_tracked`` has no counterpart.
    """
    import torch

    weights: dict[str, tuple[str, Copy]] = {}
    for path_a, path_b in modules.items():
        module = torch_model.get_submodule(path_a)
        own = [n for n, _ in module.named_parameters(recurse=False)]
        own += [n for n in module.state_dict(keep_vars=True) if "." not in n and n not in own]
        for name in own:
            if name == "num_batches_tracked":
                continue
            how = Copy.SAME
            if isinstance(module, torch.nn.Linear) and name == "weight":
                how = Copy.TRANSPOSE
            weights[join(path_a, name)] = (join(path_b, _TENSOR_NAMES.get(name, name)), how)
    return weights


def _built(
    torch_model: Any,
    paddle_model: Any,
    modules: dict[str, str],
    size: int,
    differences: Iterable[TrueDifference] = (),
    equivalent: Iterable[tuple[str, str]] = (),
    undo: Callable[[Any], None] | None = None,
    held: dict[str, str] | None = None,
) -> BuiltPair:
    """``held``: torch modules whose tensors a paddle module holds that computes more than
    they do (a BatchNorm whose ReLU paddle fuses, ``BatchNorm(act="relu")``): their weights
    go across, their outputs have no paddle counterpart (not in ``modules``)."""
    torch_model.eval()
    paddle_model.eval()
    inputs = np.random.default_rng(SEED).standard_normal((1, 3, size, size)).astype("float32")
    _away_from_init(torch_model, inputs, SEED)
    pair = BuiltPair(
        torch_model,
        paddle_model,
        (inputs,),
        _weights(torch_model, modules | (held or {})),
        modules,
        tuple(differences),
        # pairs other than ``modules`` that hold the same computation (not false if found)
        # undo: the paddle model given torch's conventions (the differences, undone by hand)
        notes={"equivalent": tuple(equivalent), "undo": undo},
    )
    pair.modules = with_call_sites(pair)  # weights were read from the plain paths above
    return pair


def _seeded() -> None:
    import paddle
    import torch

    torch.manual_seed(SEED)
    paddle.seed(SEED)


# --- the same names on both sides --------------------------------------------------------------


def _same_names(torch_arch: str, paddle_arch: str, size: int, **paddle_kwargs: Any) -> BuiltPair:
    """ResNet, ResNeXt, Wide-ResNet, VGG, MobileNetV2: paddle.vision spells every module as
    torchvision does; every torch module runs in forward."""
    _seeded()
    torch_model = getattr(import_torchvision(), torch_arch)()
    paddle_model = getattr(_paddle_models(), paddle_arch)(**paddle_kwargs)
    modules = {path: path for path, _ in torch_model.named_modules()}
    return _built(torch_model, paddle_model, modules, size)


def _same(torch_arch: str, paddle_arch: str, size: int, **kwargs: Any) -> Callable[[], BuiltPair]:
    return lambda: _same_names(torch_arch, paddle_arch, size, **kwargs)


# --- AlexNet ---------------------------------------------------------------------------------


def _alexnet() -> BuiltPair:
    """paddle: three ConvPoolLayers (conv, ReLU module, pool) and two bare convs whose ReLU is
    functional; torch's ``avgpool`` (AdaptiveAvgPool2d 6x6) has no paddle counterpart: at 224
    pixels its input is already 6x6."""
    _seeded()
    torch_model = import_torchvision().alexnet()
    paddle_model = _paddle_models().alexnet()
    modules = {"": ""}
    for index, stage in ((0, "_conv1"), (3, "_conv2"), (10, "_conv5")):
        modules[f"features.{index}"] = f"{stage}._conv"
        modules[f"features.{index + 1}"] = f"{stage}.relu"
        modules[f"features.{index + 2}"] = f"{stage}._pool"
    modules |= {"features.6": "_conv3", "features.8": "_conv4"}
    modules |= {f"classifier.{i}": b for i, b in ((0, "_drop1"), (1, "_fc6"), (3, "_drop2"))}
    modules |= {"classifier.4": "_fc7", "classifier.6": "_fc8"}
    differences = [
        TrueDifference(
            f"classifier.{i}", drop, "Dropout: paddle downscale_in_infer (x 0.5 at eval)"
        )
        for i, drop in ((0, "_drop1"), (3, "_drop2"))
    ]
    return _built(torch_model, paddle_model, modules, 224, differences, undo=_upscale_dropouts)


def _upscale_dropouts(paddle_model: Any) -> None:
    import paddle

    for layer in paddle_model.sublayers():
        if isinstance(layer, paddle.nn.Dropout):
            layer.mode = "upscale_in_train"


def _squeeze_undo(paddle_model: Any) -> None:
    _upscale_dropouts(paddle_model)
    paddle_model._pool.ceil_mode = True
    if paddle_model.version == "1.1":  # torch's first conv is not padded
        paddle_model._conv._padding = 0
        paddle_model._conv._updated_padding = [0, 0]


# --- SqueezeNet ------------------------------------------------------------------------------


def _squeezenet(version: str) -> BuiltPair:
    """paddle: ``MakeFire`` of three ``MakeFireConv`` (conv + functional ReLU), one ``_pool``
    called three times, ``F.relu`` after the first and the last conv; torch: ``Fire`` modules
    with ReLU modules, three MaxPool2d with ``ceil_mode=True``, the classifier a Sequential."""
    _seeded()
    torch_model = getattr(import_torchvision(), f"squeezenet{version}")()
    paddle_model = getattr(_paddle_models(), f"squeezenet{version}")()
    if version == "1_0":
        fires, pools, size = (3, 4, 5, 7, 8, 9, 10, 12), (2, 6, 11), 69
    else:
        fires, pools, size = (3, 4, 6, 7, 9, 10, 11, 12), (2, 5, 8), 65
    modules = {"": "", "features.0": "_conv"}
    calls = ("_pool#1", "_pool#2", "_pool#3")
    # the sizes make every torch pool's input even: ceil and floor rounding differ at each
    modules |= {f"features.{i}": call for i, call in zip(pools, calls, strict=True)}
    equivalent = []
    for number, index in enumerate(fires, start=1):
        fire_a, fire_b = f"features.{index}", f"_conv{number}"
        modules[fire_a] = fire_b
        for part_a, part_b in (("squeeze", "_conv"), ("expand1x1", "_conv_path1")):
            modules[f"{fire_a}.{part_a}"] = f"{fire_b}.{part_b}._conv"
            # torch's activation module outputs what paddle's MakeFireConv outputs
            equivalent.append((f"{fire_a}.{part_a}_activation", f"{fire_b}.{part_b}"))
        modules[f"{fire_a}.expand3x3"] = f"{fire_b}._conv_path2._conv"
        equivalent.append((f"{fire_a}.expand3x3_activation", f"{fire_b}._conv_path2"))
    modules |= {"classifier.0": "_drop", "classifier.1": "_conv9", "classifier.3": "_avg_pool"}
    differences = [
        TrueDifference(f"features.{i}", call, "MaxPool ceil_mode True vs False")
        for i, call in zip(pools, calls, strict=True)
    ]
    differences.append(
        TrueDifference(
            "classifier.0", "_drop", "Dropout: paddle downscale_in_infer (x 0.5 at eval)"
        )
    )
    if version == "1_1":
        differences.insert(0, TrueDifference("features.0", "_conv", "Conv2d padding 0 vs 1"))
    return _built(torch_model, paddle_model, modules, size, differences, equivalent, _squeeze_undo)


# --- ShuffleNetV2 ----------------------------------------------------------------------------


def _conv_norm(modules: dict[str, str], a: str, first: int, b: str, relu: bool) -> None:
    """torch's ``a.first`` conv, ``a.first+1`` BN (and ReLU) as paddle's ConvNormActivation."""
    modules[f"{a}.{first}"] = f"{b}.0"
    modules[f"{a}.{first + 1}"] = f"{b}.1"
    if relu:
        modules[f"{a}.{first + 2}"] = f"{b}.2"


def _shufflenet(width: str) -> BuiltPair:
    """paddle: blocks ``2_1``..``4_4`` (``InvertedResidualDS`` first in a stage) of
    ConvNormActivation; torch: ``stage2.0``... with ``branch1``/``branch2`` Sequentials."""
    _seeded()
    torch_model = getattr(import_torchvision(), f"shufflenet_v2_{width}")()
    paddle_model = getattr(_paddle_models(), f"shufflenet_v2_{width}")()
    modules = {"": "", "conv1": "_conv1", "maxpool": "_max_pool", "conv5": "_last_conv"}
    modules["fc"] = "_fc"
    _conv_norm(modules, "conv1", 0, "_conv1", relu=True)
    _conv_norm(modules, "conv5", 0, "_last_conv", relu=True)
    for stage, repeats in ((2, 4), (3, 8), (4, 4)):
        for block in range(repeats):
            a, b = f"stage{stage}.{block}", f"{stage}_{block + 1}"
            modules[a] = b
            if block == 0:  # stride 2: both branches
                _conv_norm(modules, f"{a}.branch1", 0, f"{b}._conv_dw_1", relu=False)
                _conv_norm(modules, f"{a}.branch1", 2, f"{b}._conv_linear_1", relu=True)
                _conv_norm(modules, f"{a}.branch2", 0, f"{b}._conv_pw_2", relu=True)
                _conv_norm(modules, f"{a}.branch2", 3, f"{b}._conv_dw_2", relu=False)
                _conv_norm(modules, f"{a}.branch2", 5, f"{b}._conv_linear_2", relu=True)
            else:
                _conv_norm(modules, f"{a}.branch2", 0, f"{b}._conv_pw", relu=True)
                _conv_norm(modules, f"{a}.branch2", 3, f"{b}._conv_dw", relu=False)
                _conv_norm(modules, f"{a}.branch2", 5, f"{b}._conv_linear", relu=True)
    return _built(torch_model, paddle_model, modules, 64)


# --- InceptionV3 -----------------------------------------------------------------------------

_INCEPTION_STEM = (
    "Conv2d_1a_3x3",
    "Conv2d_2a_3x3",
    "Conv2d_2b_3x3",
    "Conv2d_3b_1x1",
    "Conv2d_4a_3x3",
)
_INCEPTION_BLOCKS = ("5b", "5c", "5d", "6a", "6b", "6c", "6d", "6e", "7a", "7b", "7c")


def _basic_conv(
    modules: dict[str, str],
    differences: list[TrueDifference],
    equivalent: list[tuple[str, str]],
    a: str,
    b: str,
) -> None:
    """torch's ``BasicConv2d`` (conv, BatchNorm eps 0.001, functional ReLU) as paddle's
    ConvNormActivation (``.0`` conv, ``.1`` BatchNorm2D eps 1e-5, ``.2`` ReLU module): the
    block and its conv and norm pair; paddle's ReLU module has no torch module (its output is
    the block's: equivalent)."""
    modules |= {a: b, f"{a}.conv": f"{b}.0", f"{a}.bn": f"{b}.1"}
    equivalent.append((a, f"{b}.2"))
    differences.append(TrueDifference(f"{a}.bn", f"{b}.1", "BatchNorm eps 0.001 vs 1e-05"))


def _inception_v3() -> BuiltPair:
    """torch: ``Conv2d_1a_3x3``... and ``maxpool1``/``maxpool2`` at the top, ``Mixed_5b``..
    ``Mixed_7c``; paddle: an ``inception_stem`` (lowercase names, one ``max_pool`` called
    twice) and ``inception_block_list.0``..``10``. Inside a block the branches keep their names,
    except torch's ``branch_pool`` (a BasicConv2d after a functional pool) is paddle's
    ``branch_pool_conv`` (paddle's ``branch_pool`` is the pooling module, functional in torch:
    no counterpart). ``aux_logits=False``: paddle has no auxiliary head (torch runs it in
    training only); ``init_weights=False`` skips the truncated-normal init (random either way).
    The smallest input both run: 75 pixels."""
    _seeded()
    torch_model = import_torchvision().inception_v3(aux_logits=False, init_weights=False)
    paddle_model = _paddle_models().inception_v3()
    modules: dict[str, str] = {"": ""}
    differences: list[TrueDifference] = []
    equivalent: list[tuple[str, str]] = []
    for name in _INCEPTION_STEM:
        _basic_conv(modules, differences, equivalent, name, f"inception_stem.conv_{name[7:]}")
        if name == "Conv2d_2b_3x3":
            modules["maxpool1"] = "inception_stem.max_pool#1"
    modules["maxpool2"] = "inception_stem.max_pool#2"
    for index, block in enumerate(_INCEPTION_BLOCKS):
        a, b = f"Mixed_{block}", f"inception_block_list.{index}"
        modules[a] = b
        for branch, _ in torch_model.get_submodule(a).named_children():
            own = "branch_pool_conv" if branch == "branch_pool" else branch
            _basic_conv(modules, differences, equivalent, f"{a}.{branch}", f"{b}.{own}")
    modules |= {"avgpool": "avg_pool", "dropout": "dropout", "fc": "fc"}
    differences.append(
        TrueDifference("dropout", "dropout", "Dropout: paddle downscale_in_infer (x 0.8 at eval)")
    )
    return _built(torch_model, paddle_model, modules, 75, differences, equivalent, _inception_undo)


def _inception_undo(paddle_model: Any) -> None:
    import paddle

    _upscale_dropouts(paddle_model)
    for layer in paddle_model.sublayers():
        if isinstance(layer, paddle.nn.BatchNorm2D):
            layer._epsilon = 1e-3


# --- DenseNet --------------------------------------------------------------------------------


def _norm_relu_conv(modules: dict[str, str], held: dict[str, str], a: str, k: str, b: str) -> None:
    """torch's ``norm{k}``, ``relu{k}``, ``conv{k}`` modules as paddle's ``BNACConvLayer``
    (``_batch_norm`` = BatchNorm with ``act="relu"``, then ``_conv``): the ReLU's output is
    the fused norm's; the norm's tensors go to it (``held``)."""
    held[f"{a}.norm{k}"] = f"{b}._batch_norm"
    modules[f"{a}.relu{k}"] = f"{b}._batch_norm"
    modules[f"{a}.conv{k}"] = f"{b}._conv"


def _densenet121() -> BuiltPair:
    """torch: ``features`` (``conv0``, ``norm0``, ``relu0``, ``pool0``, ``denseblock1..4``
    of ``denselayer``s, ``transition1..3``, ``norm5``), then functional ReLU and pool, then
    ``classifier``; paddle: ``conv1_func`` (conv, BatchNorm act=relu), ``pool2d_max``,
    ``db_conv_2..5`` of ``conv{2..5}_{j}`` DenseLayers, ``tr_conv{2..4}_blk``, ``batch_norm``
    (act=relu), ``pool2d_avg``, ``out``. A torch dense layer takes the list of earlier
    features and returns its new ones; paddle's takes their concatenation and returns it with
    the new ones appended: the torch layer's output is paddle's ``bn_ac_func2``'s, but its
    first norm, ReLU and conv lie outside that layer, so the two are not one computation (a
    pair of them is accepted, not required), and paddle's DenseLayer has no torch counterpart.
    torch's ``features`` (its last norm before the ReLU) and paddle's final ``batch_norm`` and
    ``pool2d_avg`` (functional in torch) have none."""
    _seeded()
    torch_model = import_torchvision().densenet121()
    paddle_model = _paddle_models().densenet121()
    modules = {"": "", "features.conv0": "conv1_func._conv", "features.pool0": "pool2d_max"}
    modules |= {"features.relu0": "conv1_func._batch_norm", "classifier": "out"}
    held = {"features.norm0": "conv1_func._batch_norm", "features.norm5": "batch_norm"}
    equivalent = []
    for block, layers in enumerate((6, 12, 24, 16), start=1):
        a, b = f"features.denseblock{block}", f"db_conv_{block + 1}"
        modules[a] = b
        equivalent.append((a, f"{b}.conv{block + 1}_{layers}"))  # the last layer's concat
        for layer in range(1, layers + 1):
            layer_a, layer_b = f"{a}.denselayer{layer}", f"{b}.conv{block + 1}_{layer}"
            equivalent.append((layer_a, f"{layer_b}.bn_ac_func2"))
            equivalent.append((layer_a, f"{layer_b}.bn_ac_func2._conv"))
            for k in ("1", "2"):
                _norm_relu_conv(modules, held, layer_a, k, f"{layer_b}.bn_ac_func{k}")
                equivalent.append((f"{layer_a}.conv{k}", f"{layer_b}.bn_ac_func{k}"))
        if block < 4:
            a, b = f"features.transition{block}", f"tr_conv{block + 1}_blk"
            modules |= {a: b, f"{a}.pool": f"{b}.pool2d_avg"}
            _norm_relu_conv(modules, held, a, "", f"{b}.conv_ac_func")
            equivalent.append((f"{a}.conv", f"{b}.conv_ac_func"))
    return _built(torch_model, paddle_model, modules, 64, (), equivalent, held=held)


# --- MobileNetV3 -----------------------------------------------------------------------------


def _conv_norm_act(modules: dict[str, str], a: str, b: str, parts: int) -> None:
    """torchvision's Conv2dNormActivation as paddle's ConvNormActivation: ``.0``, ``.1`` and
    (with an activation) ``.2`` keep their names."""
    modules[a] = b
    modules |= {f"{a}.{i}": f"{b}.{i}" for i in range(parts)}


def _mobilenet_v3(size: str) -> BuiltPair:
    """torch: ``features.0`` (stem), ``features.1..n`` InvertedResidual whose ``block``
    Sequential holds [expand], depthwise, [SqueezeExcitation], project, ``features.n+1`` (last
    conv), ``avgpool``, ``classifier``; paddle: ``conv``, ``blocks.0..n-1`` of ``expand_conv``
    (where the expansion changes the width, as in torch), ``bottleneck_conv``, ``mid_se``,
    ``linear_conv``, then ``lastconv``, ``avgpool``, ``classifier`` of the same four layers.
    The SE keeps torch's names (``avgpool``, ``fc1``, ``activation``, ``fc2``,
    ``scale_activation``). torch's ``block`` Sequential ends at the project conv: it computes
    what paddle's ``linear_conv`` does, and has no module of its own on paddle's side."""
    _seeded()
    torch_model = getattr(import_torchvision(), f"mobilenet_v3_{size}")()
    paddle_model = getattr(_paddle_models(), f"mobilenet_v3_{size}")()
    modules: dict[str, str] = {"": ""}
    _conv_norm_act(modules, "features.0", "conv", 3)
    blocks = len(torch_model.features) - 2
    equivalent = []
    for index in range(blocks):
        a, b = f"features.{index + 1}.block", f"blocks.{index}"
        modules[f"features.{index + 1}"] = b
        block_b = paddle_model.blocks[index]
        names_b = ["expand_conv"] if block_b.expand else []
        names_b += ["bottleneck_conv"] + (["mid_se"] if block_b.use_se else []) + ["linear_conv"]
        layers_a = list(torch_model.get_submodule(a).named_children())
        for (k, layer), name_b in zip(layers_a, names_b, strict=True):
            if name_b == "mid_se":
                modules[f"{a}.{k}"] = f"{b}.{name_b}"
                for part in ("avgpool", "fc1", "activation", "fc2", "scale_activation"):
                    modules[f"{a}.{k}.{part}"] = f"{b}.{name_b}.{part}"
            else:
                _conv_norm_act(modules, f"{a}.{k}", f"{b}.{name_b}", len(layer))
        equivalent.append((a, f"{b}.linear_conv"))
    _conv_norm_act(modules, f"features.{blocks + 1}", "lastconv", 3)
    modules |= {"avgpool": "avgpool", "classifier": "classifier"}
    modules |= {f"classifier.{i}": f"classifier.{i}" for i in range(4)}
    return _built(torch_model, paddle_model, modules, 64, (), equivalent)


PAIRS: tuple[PortPair, ...] = (
    PortPair("torchvision/resnet18", "vision", _same("resnet18", "resnet18", 64)),
    PortPair("torchvision/resnet34", "vision", _same("resnet34", "resnet34", 64), slow=True),
    PortPair("torchvision/resnet50", "vision", _same("resnet50", "resnet50", 64), slow=True),
    PortPair(
        "torchvision/resnext50_32x4d",
        "vision",
        _same("resnext50_32x4d", "resnext50_32x4d", 64),
        slow=True,
    ),
    PortPair(
        "torchvision/wide_resnet50_2",
        "vision",
        _same("wide_resnet50_2", "wide_resnet50_2", 64),
        slow=True,
    ),
    PortPair("torchvision/vgg11", "vision", _same("vgg11", "vgg11", 64), slow=True),
    PortPair(
        "torchvision/vgg11_bn", "vision", _same("vgg11_bn", "vgg11", 64, batch_norm=True), slow=True
    ),
    PortPair("torchvision/mobilenet_v2", "vision", _same("mobilenet_v2", "mobilenet_v2", 64)),
    PortPair("torchvision/alexnet", "vision", _alexnet, slow=True),
    PortPair("torchvision/squeezenet1_0", "vision", lambda: _squeezenet("1_0")),
    PortPair("torchvision/squeezenet1_1", "vision", lambda: _squeezenet("1_1")),
    PortPair("torchvision/shufflenet_v2_x0_5", "vision", lambda: _shufflenet("x0_5")),
    PortPair("torchvision/shufflenet_v2_x1_0", "vision", lambda: _shufflenet("x1_0"), slow=True),
    PortPair("torchvision/inception_v3", "vision", _inception_v3, slow=True),
    PortPair("torchvision/densenet121", "vision", _densenet121, slow=True),
    PortPair("torchvision/mobilenet_v3_small", "vision", lambda: _mobilenet_v3("small")),
    PortPair("torchvision/mobilenet_v3_large", "vision", lambda: _mobilenet_v3("large"), slow=True),
)
