"""`OrthoLoraConfig`: LoRA plus two plain OrthoReg fields (PEFT's `PeftType` is closed, so a flag, not a type).

Its `adapter_config.json` still says ``"peft_type": "LORA"``: stock PEFT reloads it as a plain `LoraConfig`
(warning about the unknown ``orthoreg_*`` keys), so the adapter stays vanilla LoRA for every downstream tool.
`OrthoLoraConfig.from_pretrained` restores the fields.

Example:
    >>> cfg = OrthoLoraConfig(r=8, lora_alpha=8, target_modules=["q_proj", "v_proj"], orthoreg_weight=1.0)
    >>> cfg.peft_type.value, cfg.orthoreg_weight, cfg.orthoreg_norm
    ('LORA', 1.0, 'fro')
"""

from __future__ import annotations

import dataclasses
import warnings
from dataclasses import dataclass, field
from typing import Any

from peft import LoraConfig
from peft.utils import PeftType

from peft_orthoreg.orthoreg import FORMS, NORMS, check_form, check_norm, check_weight


@dataclass
class OrthoLoraConfig(LoraConfig):
    """A `LoraConfig` whose adapters are trained with the OrthoReg term λ·Σ_l ‖G_l − I‖_F.

    The term is added by a trainer built with `with_orthoreg(...)` (or by calling `orthoreg_loss` yourself);
    the LoRA layers themselves are plain LoRA (no variant), so inference and merging are unchanged.

    Example:
        >>> OrthoLoraConfig(r=4, orthoreg_weight=0.1, orthoreg_norm="fro_squared").to_dict()["orthoreg_norm"]
        'fro_squared'
    """

    orthoreg_weight: float = field(
        default=0.0,
        metadata={
            "help": "OrthoReg weight λ ≥ 0 (0 disables). The paper's README uses λ = 1 for LoRA at lr 1e-4 with "
            "r = α = 8 and λ = 10 for full fine-tuning at lr 1e-5."
        },
    )
    orthoreg_norm: str = field(
        default="fro",
        metadata={
            "help": f"Per-layer norm of G − I: one of {', '.join(NORMS)}. 'fro' (‖·‖_F) is the official code; "
            "'fro_squared' (‖·‖²_F) is the paper's text."
        },
    )

    orthoreg_form: str = field(
        default="paper",
        metadata={
            "help": f"Which term: {', '.join(FORMS)} or a form a `peft_orthoreg` plugin registers. 'paper': "
            "‖G − I‖; 'scale_free': ‖G/τ − I‖ with τ = tr G / k (no push to grow ‖ΔW‖); 'flat_spectrum': "
            "spread of ΔW's r nonzero Gram eigenvalues around their mean (use the r directions evenly; 0 at ΔW = 0); "
            "'inter_task': overlap of ΔW with the orthoreg_reference_adapters' updates."
        },
    )
    orthoreg_reference_adapters: list[str] | None = field(
        default=None,
        metadata={
            "help": "orthoreg_form='inter_task' only: names of already-trained adapters loaded in the same "
            "PeftModel (model.load_adapter(dir, adapter_name=name)) whose updates this adapter stays orthogonal to."
        },
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        self.orthoreg_weight = check_weight(self.orthoreg_weight)
        check_norm(self.orthoreg_norm)
        check_form(self.orthoreg_form)
        from peft_orthoreg.plugins import get_form  # a plugin's form too: fail now, not at the first step

        if get_form(self.orthoreg_form).factor_loss is None:
            raise ValueError(
                f"orthoreg_form={self.orthoreg_form!r} has no LoRA factor form (it runs in full fine-tuning only)"
            )
        refs = self.orthoreg_reference_adapters
        if refs is not None:
            if isinstance(refs, str) or not all(isinstance(r, str) and r for r in refs):
                raise ValueError(f"orthoreg_reference_adapters={refs!r} must be a list of adapter names")
            self.orthoreg_reference_adapters = list(refs)
        if self.orthoreg_form == "inter_task" and self.orthoreg_weight > 0 and not refs:
            raise ValueError(
                "orthoreg_form='inter_task' needs orthoreg_reference_adapters (a non-empty list of names)"
            )
        if refs and self.orthoreg_form != "inter_task":
            raise ValueError(
                f"orthoreg_reference_adapters is set but orthoreg_form={self.orthoreg_form!r}; it applies to "
                "'inter_task' only"
            )
        if self.use_dora and self.orthoreg_weight > 0:
            raise ValueError(
                "use_dora=True with orthoreg_weight > 0: DoRA's update is not s·B·A, OrthoReg supports plain LoRA only"
            )

    @classmethod
    def from_peft_type(cls, **kwargs: Any) -> OrthoLoraConfig:
        """Build this class (not PEFT's `LoraConfig`, which `peft_type="LORA"` would pick) from saved kwargs."""
        peft_type = kwargs.get("peft_type")
        if peft_type is not None and str(getattr(peft_type, "value", peft_type)) != PeftType.LORA.value:
            raise ValueError(f"peft_type={peft_type!r}: OrthoLoraConfig loads LoRA adapters only")
        known = {f.name for f in dataclasses.fields(cls) if f.init}
        unknown = sorted(set(kwargs) - known)
        if unknown:
            warnings.warn(f"OrthoLoraConfig: ignoring unknown keys {unknown}", stacklevel=2)
        return cls(**{k: v for k, v in kwargs.items() if k in known})
