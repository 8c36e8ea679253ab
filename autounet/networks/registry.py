"""The network registry: families register a constructor under a lower_snake name."""

from __future__ import annotations

from typing import Any, Callable

from torch import nn

from autounet.registry import Registry

NETWORKS: Registry[Callable[..., nn.Module]] = Registry("network")
"""Every network family, by registry name (``"unet"``, ``"resenc"``, ...)."""


def register_network(name: str) -> Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
    """Class decorator that registers a network family under ``name``.

    The constructor must accept the common signature ``(in_channels, num_classes, features_per_stage,
    kernel_sizes, strides, n_conv_per_stage=2, n_conv_per_stage_decoder=2, deep_supervision=True, **kwargs)``.

    Examples
    --------
    In ``autounet/networks/my_unet.py`` (imported by ``autounet/networks/__init__.py``)::

        @register_network("my_unet")
        class MyUNet(SegmentationNetwork):
            def __init__(self, in_channels, num_classes, features_per_stage, kernel_sizes, strides,
                         n_conv_per_stage=2, n_conv_per_stage_decoder=2, deep_supervision=True):
                ...
    """
    return NETWORKS.register(name)


def create_network(name: str, **kwargs: Any) -> nn.Module:
    """Build the network family registered as ``name`` with PyTorch's default initialisation.

    Use :func:`autounet.networks.build.build_network` to build from a plans configuration with He init.

    Raises
    ------
    KeyError
        For an unknown name; the message lists the families and the closest match.

    Examples
    --------
    >>> net = create_network("unet", in_channels=1, num_classes=2, features_per_stage=[4, 8],
    ...                      kernel_sizes=[[3, 3], [3, 3]], strides=[[1, 1], [2, 2]])
    >>> type(net).__name__
    'UNet'
    >>> create_network("unte")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    KeyError: 'unknown network "unte"; available: ... Did you mean "unet"?'
    """
    return NETWORKS.get(name)(**kwargs)


def list_networks() -> list[str]:
    """Sorted names of the registered network families.

    Examples
    --------
    >>> "unet" in list_networks()
    True
    """
    return NETWORKS.names()
