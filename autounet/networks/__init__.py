"""Segmentation network families (U-Net variants) behind a registry, plus the blocks to build new ones.

Use
---
>>> from autounet.networks import build_network, list_networks
>>> config = {"features_per_stage": [4, 8], "kernel_sizes": [[3, 3], [3, 3]], "strides": [[1, 1], [2, 2]]}
>>> net = build_network(config, in_channels=1, num_classes=2)
>>> sorted(set(list_networks()) & {"unet", "resenc"})
['resenc', 'unet']

Adding a family
---------------
1. Create ``autounet/networks/<family>.py`` with a class decorated ``@register_network("<family>")``.
2. Its constructor takes the common signature ``(in_channels, num_classes, features_per_stage, kernel_sizes,
   strides, n_conv_per_stage=2, n_conv_per_stage_decoder=2, deep_supervision=True, **family_kwargs)``;
   call :func:`~autounet.networks.topology.validate_topology` first.
3. Build it from the shared pieces: blocks in :mod:`~autounet.networks.blocks` (``ConvNormAct``,
   ``StackedConvs``, ``ResidualBlock``), encoders in :mod:`~autounet.networks.encoders` (``Encoder``,
   ``plain_encoder``, ``residual_encoder``) and :class:`~autounet.networks.decoder.UNetDecoder`, and subclass
   :class:`~autounet.networks.segmentation_network.SegmentationNetwork` so ``deep_supervision`` and the input
   check come for free. A family that needs a different decoder keeps a ``deep_supervision`` attribute on it and
   returns full-resolution logits first.
4. Import the module at the bottom of this file so it registers. ``tests/networks/test_networks_contract.py``
   then covers it (2D, 3D, anisotropic 3D, deep supervision, a training step) with no test written.
Family-specific options go in the plans as ``network_kwargs``. See ``docs/networks.md``.
"""

from __future__ import annotations

from autounet.networks.build import build_network, count_parameters, init_output_bias, init_weights_he
from autounet.networks.registry import NETWORKS, create_network, list_networks, register_network

# Importing a family module registers it.
from autounet.networks import resenc, unet  # noqa: E402,F401  isort: skip
from autounet.networks import (  # noqa: E402,F401  isort: skip
    attention_unet, denseunet, dilated, multires, r2unet, resunet, unetpp, vnet,
)

__all__ = [
    "NETWORKS",
    "build_network",
    "count_parameters",
    "create_network",
    "init_output_bias",
    "init_weights_he",
    "list_networks",
    "register_network",
]
