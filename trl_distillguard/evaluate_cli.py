"""`distillguard evaluate`: score a model (or a base model with a PEFT adapter) on a dataset spec with a verifier.

Greedy, batched; the JSON has the exact accuracy (fraction of rows with full credit), the mean verifier score
(counting partial credit), the counts and one item per row. Bad input (unknown verifier, a dataset without the
verifier's gold column, a model that does not resolve, an adapter of another base, ...) is one line, exit 2,
before anything is generated.

Example:
    $ distillguard evaluate --model smollm2-135m-instruct --data "reasoning_gym:gcd?size=32&split=test" \\
        --verifier reasoning_gym --output_json gcd.json
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from distill_ortho_merge.cli import InputError, run_cli


@dataclass
class EvaluateConfig:
    """Fields of `distillguard evaluate` (YAML `--config` keys or `--field value` flags).

    Example:
        >>> EvaluateConfig(model="m", data="arithmetic", verifier="math_answer").max_new_tokens
        64
    """

    model: str | None = field(
        default=None,
        metadata={
            "help": "Model: a local directory, a *.gguf file or a built-in name (distillguard models list)."
        },
    )
    adapter: str | None = field(
        default=None,
        metadata={"help": "A PEFT LoRA adapter directory of that model, merged in before scoring."},
    )
    data: str | None = field(
        default=None,
        metadata={
            "help": "Dataset: a .jsonl/.json/.parquet file or directory, or a spec such as "
            "'reasoning_gym:gcd?size=64&split=test&prompt=bare&format=text' (distillguard data list)."
        },
    )
    verifier: str | None = field(
        default=None,
        metadata={"help": "Verifier: a registered name (reasoning_gym, math_answer, ...) or module:attr."},
    )
    size: int | None = field(
        default=None,
        metadata={"help": "Rows to score (first N of a file; a built-in generates N, default 64)."},
    )
    seed: int = field(default=0, metadata={"help": "Seed of generated datasets (a spec's ?seed= wins)."})
    prompt_column: str = field(default="prompt", metadata={"help": "Column holding the prompt."})
    max_new_tokens: int = field(default=64, metadata={"help": "Greedy tokens generated per prompt."})
    batch_size: int = field(default=16, metadata={"help": "Prompts generated together."})
    device: str = field(default="cpu", metadata={"help": "Device (cpu, cuda, ...)."})
    dtype: str = field(default="float32", metadata={"help": "Weights dtype: float32, bfloat16 or float16."})
    output_json: str | None = field(
        default=None,
        metadata={"help": "Write the full JSON here (staged); without it the full JSON goes to stdout."},
    )
    progress: bool = field(default=True, metadata={"help": "Show a progress bar."})

    def __post_init__(self) -> None:
        missing = [name for name in ("model", "data", "verifier") if not getattr(self, name)]
        if missing:
            raise ValueError(f"give --{' --'.join(missing)} (or in the --config YAML)")
        for name in ("max_new_tokens", "batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"--{name} must be >= 1, got {getattr(self, name)}")
        if self.size is not None and self.size < 1:
            raise ValueError(f"--size must be >= 1, got {self.size}")


def evaluate_command(cfg: EvaluateConfig) -> dict:
    """Score as `cfg` says; writes `cfg.output_json` when set; returns the JSON content."""
    from distill_ortho_merge.outputs import staged_file
    from distill_ortho_merge.scoring import score_on_data

    result = score_on_data(
        cfg.model, cfg.data, cfg.verifier, cfg.adapter, size=cfg.size, seed=cfg.seed,
        prompt_column=cfg.prompt_column, max_new_tokens=cfg.max_new_tokens, batch_size=cfg.batch_size,
        device=cfg.device, dtype=cfg.dtype, progress=cfg.progress,
    )  # fmt: skip
    if cfg.output_json:
        with staged_file(cfg.output_json) as tmp:
            Path(tmp).write_text(json.dumps(result, indent=1, default=str) + "\n", encoding="utf-8")
    return result


def main(argv: list[str]) -> int:
    """`distillguard evaluate --model M [--adapter A] --data SPEC --verifier V [--config FILE.yaml]`.

    Example:
        >>> main(["--model", "m", "--data", "arithmetic"])  # stderr: one line naming --verifier
        2
    """
    from trl import TrlParser

    from trl_distillguard.config_file import parse_config

    def body() -> int:
        try:
            (cfg,) = parse_config(TrlParser((EvaluateConfig,), prog="distillguard evaluate"), argv)
        except ValueError as err:
            raise InputError(str(err)) from None
        result = evaluate_command(cfg)
        brief = {k: v for k, v in result.items() if k != "items"}
        if cfg.output_json:
            print(json.dumps(brief) + f"\nwrote {cfg.output_json} ({len(result['items'])} items)")
        else:
            print(json.dumps(result, indent=1, default=str))
        return 0

    return run_cli(body, "distillguard evaluate")
