"""Planners: pure rules that turn a dataset fingerprint into plans (spacing, patch, batch, network topology).

>>> from autounet.planners import plan_experiment, PlanOverrides, load_plans

``plan_experiment(fingerprint, memory_budget_gb=None, overrides=None) -> Plans`` sequences the rules; each
rule is a function in its own module (``target_spacing``, ``normalization``, ``topology``, ``patch_size``,
``memory``, ``batch_size``, ``configurations``, ``context_slices``) and can be called with numbers alone.
See ``docs/planning.md``.
"""

from autounet.planners import family_memory  # noqa: F401  registers the network families' memory estimates
from autounet.planners.device import DeviceInfo, detect_device
from autounet.planners.explain import format_explanations
from autounet.planners.memory import (
    estimate_memory,
    register_memory_estimator,
    register_memory_multiplier,
    unet_feature_map_size,
)
from autounet.planners.overrides import PlanOverrides
from autounet.planners.planner import ConfigurationResult, fixed_patch_plan, plan_configuration, plan_experiment
from autounet.planners.plans import (
    CONFIGURATION_NAMES,
    PLANS_VERSION,
    ChannelNormalization,
    ConfigurationPlan,
    Plans,
    ResamplingPlan,
    load_plans,
    network_input_channels,
)

__all__ = [
    "CONFIGURATION_NAMES",
    "PLANS_VERSION",
    "ChannelNormalization",
    "ConfigurationPlan",
    "ConfigurationResult",
    "DeviceInfo",
    "PlanOverrides",
    "Plans",
    "ResamplingPlan",
    "detect_device",
    "estimate_memory",
    "fixed_patch_plan",
    "format_explanations",
    "load_plans",
    "network_input_channels",
    "plan_configuration",
    "plan_experiment",
    "register_memory_estimator",
    "register_memory_multiplier",
    "unet_feature_map_size",
]
