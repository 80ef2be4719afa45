"""Config overrides shared by tests."""

from pipeline.config.activity import SystematicsConfig

# every term of activity.systematics off: the counting alone, nothing re-simulated
NO_SYSTEMATICS = {f"activity.systematics.{name}": None for name in SystematicsConfig.model_fields}
