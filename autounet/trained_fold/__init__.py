"""What a trained fold leaves on disk for inference: checkpoints and the fold record, written by training, read by
inference (below both stages, so neither imports the other for them).

``checkpoint`` writes and reads ``checkpoint_<final|best|latest>.pt`` safely (``weights_only=True``) and explains
mismatches; ``record`` is the fold record ``fold.json``, the single source of the network and inference settings a
fold was trained with. Paths come from :mod:`autounet.layout`.
"""

from autounet.trained_fold.checkpoint import CheckpointError, check_compatible, load_checkpoint, save_checkpoint

__all__ = ["CheckpointError", "check_compatible", "load_checkpoint", "save_checkpoint"]
