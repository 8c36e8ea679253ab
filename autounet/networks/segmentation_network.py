"""The encoder + decoder module every network family returns, with the deep-supervision switch."""

from __future__ import annotations

import torch
from torch import nn

from autounet.networks.topology import Topology


class SegmentationNetwork(nn.Module):
    """An encoder followed by a decoder; subclass only to assemble the two in ``__init__``.

    Parameters
    ----------
    encoder : nn.Module
        Maps ``(N, in_channels, *spatial)`` to a list of skips, shallowest first.
    decoder : nn.Module
        Maps the skips to logits; must have a boolean ``deep_supervision`` attribute.
    topology : Topology
        The checked topology; used to reject inputs whose size is not divisible by the total stride.
    in_channels, num_classes : int
        Input and output channels, kept for the trainer and for inference.

    Attributes
    ----------
    zero_init_residual : bool
        Whether :func:`~autounet.networks.build.build_network` zeroes the residual branches after the He
        initialisation (false here; families with residual blocks set it from their ``zero_init_residual`` option).
    deep_supervision : bool
        When true ``forward`` returns a list of logits, full resolution first, one per decoder stage; set it to
        false for inference to get one ``(N, num_classes, *spatial)`` tensor.

    Examples
    --------
    >>> from autounet.networks.decoder import UNetDecoder
    >>> from autounet.networks.encoders import plain_encoder
    >>> from autounet.networks.topology import validate_topology
    >>> topology = validate_topology([4, 8], [[3, 3], [3, 3]], [[1, 1], [2, 2]])
    >>> encoder = plain_encoder(topology, in_channels=1)
    >>> decoder = UNetDecoder(encoder.output_channels, topology, num_classes=2, deep_supervision=False)
    >>> net = SegmentationNetwork(encoder, decoder, topology, in_channels=1, num_classes=2)
    >>> net(torch.zeros(1, 1, 8, 8)).shape
    torch.Size([1, 2, 8, 8])
    """

    def __init__(self, encoder: nn.Module, decoder: nn.Module, topology: Topology, in_channels: int, num_classes: int) -> None:
        super().__init__()
        self.encoder = encoder
        self.decoder = decoder
        self.topology = topology
        self.in_channels = in_channels
        self.num_classes = num_classes
        self.zero_init_residual = False

    @property
    def deep_supervision(self) -> bool:
        return bool(self.decoder.deep_supervision)

    @deep_supervision.setter
    def deep_supervision(self, enabled: bool) -> None:
        self.decoder.deep_supervision = bool(enabled)

    def forward(self, x: torch.Tensor) -> torch.Tensor | list[torch.Tensor]:
        self._check_input(x)
        return self.decoder(self.encoder(x))

    def _check_input(self, x: torch.Tensor) -> None:
        spatial = tuple(x.shape[2:])
        total = self.topology.total_stride
        if x.ndim != 2 + len(total) or x.shape[1] != self.in_channels:
            raise ValueError(
                f"expected input of shape (N, {self.in_channels}, *{len(total)} spatial axes), got {tuple(x.shape)}"
            )
        if any(size % stride for size, stride in zip(spatial, total)):
            raise ValueError(
                f"input spatial shape {spatial} is not divisible by the network's total stride {total}; "
                "pad the patch or choose a patch size that is a multiple of it"
            )
