"""Typed run configuration: schema, TOML loading with clear errors, TOML writing."""

from cockpit.config.loader import (
    ConfigError,
    ConfigProblem,
    diff_from_defaults,
    dump_config,
    load_config,
    load_config_text,
)
from cockpit.config.schema import ARCHITECTURES, LIVE_FIELDS, Config

__all__ = [
    "ARCHITECTURES",
    "LIVE_FIELDS",
    "Config",
    "ConfigError",
    "ConfigProblem",
    "diff_from_defaults",
    "dump_config",
    "load_config",
    "load_config_text",
]
