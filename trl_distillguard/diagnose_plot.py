"""The figure of `distillguard diagnose` (`diagnose.png`): tail noise, the gap, the exposure gap, symptoms.

Usage: ``plot_diagnosis(result, ratios, tail_mass, per_sampler, Path("diagnose.png"))``, called by `diagnose`
with its result and raw samples (`tests/test_diagnose.py` checks the figure it writes).
"""

from __future__ import annotations

from pathlib import Path


def plot_diagnosis(result, ratios, tail_mass, per_sampler, path: Path) -> None:
    """Four panels from `diagnose`'s result and raw samples (span log-ratios, per-position tail mass)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 4, figsize=(17, 3.8))
    ax = axes[0]
    ax.hist(tail_mass.numpy(), bins=30, color="tab:orange", log=True)
    ax.locator_params(axis="x", nbins=4)
    ax.set(
        title=f"tail noise: teacher mass outside top-{result['tail_noise']['top_k']}",
        xlabel="tail mass",
        ylabel="positions",
    )
    ax = axes[1]
    ax.hist(ratios.numpy(), bins=40, color="tab:blue")
    ax.axvline(0, color="k", lw=0.8)
    ax.set(title="gap: log q - log p per aligned span\n(student samples)", xlabel="nats", ylabel="spans")
    ax = axes[2]
    off = result["off_policy"]
    ax.bar(["teacher samples\n(off-policy)", "student samples\n(on-policy)"], [off["off_policy"], off["on_policy"]],
           color=["tab:gray", "tab:red"])  # fmt: skip
    ax.set(title=f"exposure gap = {off['gap']:.3f}", ylabel="sum |log-ratio| per byte")
    ax = axes[3]
    sym = result["symptoms"]
    names = {"repeated_ngram_rate": "repeated\nn-grams", "degenerate_token_rate": "degenerate\ntokens",
             "marker_rate": "self-correction\nmarkers", "overconfidence": "max-prob on\nwrong answers"}  # fmt: skip

    def value(who: str, key: str) -> float:
        if key == "marker_rate":
            return sym[who]["self_correction"]["marker_rate"]
        if key == "overconfidence":
            return sym[who].get("overconfidence", {}).get("wrong", float("nan"))
        return sym[who][key]

    x = list(range(len(names)))
    for offset, who in ((-0.2, "teacher"), (0.2, "student")):
        vals = [value(who, k) for k in names]
        bars = ax.bar(
            [i + offset for i in x], [0 if v != v else v for v in vals], 0.4, label=f"{who} samples"
        )
        ax.bar_label(bars, labels=["n/a" if v != v else f"{v:.2f}" for v in vals], fontsize=7)
    ax.set_xticks(x, list(names.values()), fontsize=8)
    ax.set(title="symptoms", ylim=(0, 1.1))
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
