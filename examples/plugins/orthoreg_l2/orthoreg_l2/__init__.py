"""A third-party OrthoReg form for peft_orthoreg: Σ‖ΔW‖_F over the LoRA layers (shrinks updates, nothing else)."""
