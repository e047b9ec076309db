"""Reading a subcommand's YAML `--config` and flags with one-line errors: re-exported from
`distill_ortho_merge.config_file` (shared with `peft-orthoreg train`)."""

from __future__ import annotations

from distill_ortho_merge.config_file import closest, parse_config, read_yaml_config

__all__ = ["closest", "parse_config", "read_yaml_config"]
