"""Build a network from a plans configuration, initialise its weights and count its parameters."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from torch import nn

from autounet.errors import PlansError
from autounet.networks.blocks import zero_residual_branches
from autounet.networks.registry import NETWORKS, create_network

DEFAULT_NETWORK = "unet"
"""Registry name used when a configuration has no ``network`` key."""

HE_NEGATIVE_SLOPE = 1e-2
"""``a`` of Kaiming-normal init, matching the LeakyReLU slope (nnU-Net's ``InitWeights_He(1e-2)``)."""

_TOPOLOGY_KEYS = ("features_per_stage", "kernel_sizes", "strides")
_CONV_TYPES = (nn.Conv2d, nn.Conv3d, nn.ConvTranspose2d, nn.ConvTranspose3d)


def init_weights_he(module: nn.Module, negative_slope: float = HE_NEGATIVE_SLOPE) -> None:
    """Kaiming-normal weights and zero bias for every (transposed) convolution; use with ``model.apply``.

    Examples
    --------
    >>> conv = nn.Conv2d(1, 1, 3)
    >>> init_weights_he(conv)
    >>> float(conv.bias.detach().abs().sum())
    0.0
    """
    if isinstance(module, _CONV_TYPES):
        nn.init.kaiming_normal_(module.weight, a=negative_slope)
        if module.bias is not None:
            nn.init.zeros_(module.bias)


def build_network(
    configuration: Mapping[str, Any], in_channels: int, num_classes: int, deep_supervision: bool = True
) -> nn.Module:
    """Build and He-initialise the network a plans configuration describes.

    Families whose ``zero_init_residual`` is true (``resenc`` by default, as nnU-Net; ``resunet`` and ``dilated`` on request) then get the
    last norm of each residual branch zeroed, so every residual block starts as its skip path.

    Parameters
    ----------
    configuration : mapping
        A plans configuration with ``features_per_stage``, ``kernel_sizes``, ``strides`` and optionally
        ``network`` (registry name, default ``"unet"``), ``network_kwargs`` (dict of family-specific
        arguments), ``n_conv_per_stage`` and ``n_conv_per_stage_decoder`` (default 2 each).
    in_channels : int
        Image channels.
    num_classes : int
        Labels including background.
    deep_supervision : bool
        Return one logit map per decoder stage during training.

    Returns
    -------
    nn.Module
        The network, in float32 on the CPU, in training mode.

    Raises
    ------
    PlansError
        When a topology key is missing or the family is unknown.

    Examples
    --------
    >>> config = {"network": "unet", "features_per_stage": [4, 8], "kernel_sizes": [[3, 3], [3, 3]],
    ...           "strides": [[1, 1], [2, 2]], "n_conv_per_stage": [2, 2], "n_conv_per_stage_decoder": [2]}
    >>> net = build_network(config, in_channels=1, num_classes=2)
    >>> count_parameters(net)
    1714
    """
    missing = [key for key in _TOPOLOGY_KEYS if key not in configuration]
    if missing:
        raise PlansError(
            f"the plans configuration has no {', '.join(missing)}; re-run \"autounet plan\" or add them by hand"
        )
    name = configuration.get("network", DEFAULT_NETWORK)
    if name not in NETWORKS:
        try:
            NETWORKS.get(name)
        except KeyError as error:
            raise PlansError(f"{error.args[0]} Fix \"network\" in the plans.") from None
    network = create_network(
        name,
        in_channels=in_channels,
        num_classes=num_classes,
        features_per_stage=configuration["features_per_stage"],
        kernel_sizes=configuration["kernel_sizes"],
        strides=configuration["strides"],
        n_conv_per_stage=configuration.get("n_conv_per_stage", 2),
        n_conv_per_stage_decoder=configuration.get("n_conv_per_stage_decoder", 2),
        deep_supervision=deep_supervision,
        **dict(configuration.get("network_kwargs") or {}),
    )
    network.apply(init_weights_he)
    if getattr(network, "zero_init_residual", False):
        zero_residual_branches(network)
    return network


def count_parameters(model: nn.Module, trainable_only: bool = True) -> int:
    """Number of (trainable) parameters of ``model``.

    Examples
    --------
    >>> count_parameters(nn.Linear(3, 2))
    8
    """
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)
