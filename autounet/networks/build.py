"""Build a network from a plans configuration, initialise its weights and count its parameters."""

from __future__ import annotations

import inspect
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

from autounet.errors import PlansError
from autounet.networks.blocks import zero_residual_branches
from autounet.networks.registry import NETWORKS, create_network

DEFAULT_NETWORK = "unet"
"""Registry name used when a configuration has no ``network`` key."""

HE_NEGATIVE_SLOPE = 1e-2
"""``a`` of Kaiming-normal init, matching the LeakyReLU slope (nnU-Net's ``InitWeights_He(1e-2)``)."""

MIN_PRIOR_FOR_LOG = 1e-6
"""Shares below this are raised to it before the logarithm (a hand-edited prior of 0 must not give -inf)."""

_TOPOLOGY_KEYS = ("features_per_stage", "kernel_sizes", "strides")
_COMMON_ARGUMENTS = ("in_channels", "num_classes", "features_per_stage", "kernel_sizes", "strides",
                     "n_conv_per_stage", "n_conv_per_stage_decoder", "deep_supervision")
"""The arguments every family takes from the topology (register_network); the rest are its options."""
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


def init_output_bias(network: nn.Module, class_prior: Sequence[float]) -> None:
    """Set the bias of every segmentation head (each deep-supervision level) to ``log(class_prior)``.

    The untrained network then predicts the class frequencies (softmax of the bias) instead of equal
    probabilities; see :mod:`autounet.planners.class_prior` for why.

    Parameters
    ----------
    network : nn.Module
        A network family whose decoder keeps its 1x1 output convolutions in ``decoder.heads``.
    class_prior : sequence of float
        One share per output class, background first.

    Raises
    ------
    PlansError
        When the prior has not one value per output class.
    TypeError
        When the network has no ``decoder.heads``.

    Examples
    --------
    >>> config = {"features_per_stage": [4, 8], "kernel_sizes": [[3, 3], [3, 3]], "strides": [[1, 1], [2, 2]]}
    >>> net = build_network(config, in_channels=1, num_classes=3, class_prior=[0.9, 0.05, 0.05])
    >>> [round(p, 2) for p in torch.softmax(net.decoder.heads[0].bias, 0).tolist()]
    [0.9, 0.05, 0.05]
    """
    heads = getattr(getattr(network, "decoder", None), "heads", None)
    if heads is None:
        raise TypeError(
            f"{type(network).__name__} keeps no output convolutions in decoder.heads, so its output bias cannot start "
            "at the class prior; give its decoder a 'heads' ModuleList (docs/networks.md, 'Adding a family')"
        )
    prior = torch.tensor([float(p) for p in class_prior], dtype=torch.float32)
    for head in heads:
        if head.bias is None or head.bias.shape != prior.shape:
            raise PlansError(
                f"class_prior has {prior.numel()} values but the network predicts {head.weight.shape[0]} classes; give "
                "one share per label, background first, or set class_prior to null in plans.json"
            )
        with torch.no_grad():
            head.bias.copy_(prior.clamp_min(MIN_PRIOR_FOR_LOG).log())


def build_network(
    configuration: Mapping[str, Any],
    in_channels: int,
    num_classes: int,
    deep_supervision: bool = True,
    class_prior: Sequence[float] | None = None,
) -> nn.Module:
    """Build and He-initialise the network a plans configuration describes.

    Families whose ``zero_init_residual`` is true (``resenc`` by default, as nnU-Net; ``resunet`` and ``dilated`` on request) then get the
    last norm of each residual branch zeroed, so every residual block starts as its skip path. With a
    ``class_prior`` the output bias starts at its logarithm (:func:`init_output_bias`), else at zero.

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
    class_prior : sequence of float, optional
        Share of each class (the plans' ``class_prior``); None leaves the output bias at zero.

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
    network_kwargs = dict(configuration.get("network_kwargs") or {})
    _check_family_options(name, network_kwargs)
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
        **network_kwargs,
    )
    network.apply(init_weights_he)
    if getattr(network, "zero_init_residual", False):
        zero_residual_branches(network)
    if class_prior is not None:
        init_output_bias(network, class_prior)
    return network


def _check_family_options(name: str, network_kwargs: Mapping[str, Any]) -> None:
    """Raise a PlansError naming every key of ``network_kwargs`` that family ``name`` does not take, and the ones it
    does (instead of the constructor's TypeError)."""
    parameters = inspect.signature(NETWORKS.get(name)).parameters
    if any(parameter.kind is parameter.VAR_KEYWORD for parameter in parameters.values()):
        return
    options = [key for key in parameters if key not in _COMMON_ARGUMENTS]
    unknown = [key for key in network_kwargs if key not in options]
    if unknown:
        raise PlansError(
            f'network "{name}" has no option {", ".join(map(repr, unknown))}; its options: '
            f'{", ".join(options) or "none"}. Fix "network_kwargs" in the plans (docs/networks.md lists each family\'s).'
        )


def count_parameters(model: nn.Module, trainable_only: bool = True) -> int:
    """Number of (trainable) parameters of ``model``.

    Examples
    --------
    >>> count_parameters(nn.Linear(3, 2))
    8
    """
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)
