"""autounet: self-configuring medical image segmentation in the spirit of nnU-Net."""

__version__ = "0.1.0"
