"""What a training config must agree with in its dataset: the conv nets' image shape, toys' real-valued points,
and the labels a conditional run needs. Split from models/config.py (the options themselves stay in its one
TrainConfig); torch-free like it.
"""

from __future__ import annotations

from typing import Protocol

from models.config_errors import ConfigError
from models.datasets import DatasetError, image_shape_of, is_toy, label_names_of


class DataBound(Protocol):
    """What these checks read of a TrainConfig (models/config.py imports this module, not the reverse)."""

    dataset: str
    architecture: str
    g_output: str
    g_hidden: tuple[int, ...]

# The conv generator (models/nets/conv.py) reshapes its last hidden layer to (80, 10, 10) and a 5 x 5
# transposed convolution with stride 3 makes that 3 * (10 - 1) + 5 = 32 pixels a side.
CONV_G_CHANNELS, CONV_G_GRID, CONV_KERNEL, CONV_STRIDE = 80, 10, 5, 3
CONV_G_FEATURES = CONV_G_CHANNELS * CONV_G_GRID * CONV_G_GRID
CONV_SIDE = CONV_STRIDE * (CONV_G_GRID - 1) + CONV_KERNEL


def check_conv_shape(shape: tuple[int, ...]) -> str | None:
    """Why the conv nets cannot model images of `shape`, or None."""
    if len(shape) != 3 or tuple(shape[1:]) != (CONV_SIDE, CONV_SIDE) or shape[0] not in (1, 3):
        return (f"the conv architecture needs 1 or 3 x {CONV_SIDE} x {CONV_SIDE} images, the data is "
                f"{' x '.join(map(str, shape))}")
    return None


def class_names(conditional: bool, dataset: str) -> tuple[str, ...]:
    """The class names a conditional run on `dataset` takes; ConfigError naming `conditional` when the dataset
    has none. () when not conditional, or for an unknown dataset (the caller reports that)."""
    if not conditional:
        return ()
    try:
        names = label_names_of(dataset)
    except DatasetError:
        return ()
    if len(names) < 2:
        raise ConfigError("conditional", f"dataset {dataset!r} has no class labels; conditional needs a labelled "
                                         f"dataset: mnist, fashion-mnist, cifar10, or an upload with one folder per "
                                         f"class")
    return tuple(names)


def check_against_data(c: DataBound) -> None:
    """What depends on the dataset: toys are real-valued points, the conv nets need C x 32 x 32 images."""
    if is_toy(c.dataset) and c.g_output == "sigmoid":
        raise ConfigError("dataset", f"{c.dataset!r} is a toy of real-valued points, which a sigmoid output in "
                                     f"[0, 1] cannot reach: use the toy-1d or toy-2d preset")
    if c.architecture != "conv":
        return
    if c.g_hidden[-1] != CONV_G_FEATURES:
        raise ConfigError("g_hidden", f"the conv generator reshapes its last hidden layer to (80, 10, 10): "
                                      f"it must have {CONV_G_FEATURES} units, got {c.g_hidden[-1]}")
    try:
        shape = image_shape_of(c.dataset)
    except DatasetError:
        return  # an unknown dataset is reported by the caller, which knows the field it came from
    problem = check_conv_shape(shape)
    if problem:
        raise ConfigError("dataset", f"{c.dataset!r}: {problem}")


__all__ = ["CONV_G_CHANNELS", "CONV_G_FEATURES", "CONV_G_GRID", "CONV_KERNEL", "CONV_SIDE", "CONV_STRIDE",
           "DataBound", "check_against_data", "check_conv_shape", "class_names"]
