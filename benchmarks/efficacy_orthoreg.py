"""Does any OrthoReg form make task vectors merge better, and which merge method should users pick? (issue 13)

For each fine-tuning variant (plain; the paper's form at λ ∈ {0.01, 0.1, 1}; the scale-free form; the
flat-spectrum form, LoRA only; the inter-task form, trained sequentially: task t is penalised against tasks < t),
mode (LoRA r = 8 / full fine-tuning of the same 28 projection matrices) and seed, fine-tune one task vector per
task, then merge all K with task arithmetic, TIES (mergekit's own sparsify + sign-consensus functions, in memory), TSV-M, Iso-C and
Iso-CTS (`mergekit_plugins.core`). α per method is chosen on a validation split by mean normalised accuracy;
the test split reports. Settings: ``tiny`` (`efficacy_toy.py`, LoRA and full fine-tuning), ``smollm2`` and
``smollm2-open`` (`efficacy_smollm2.py`: SmolLM2-135M-Instruct, LoRA, 4 reasoning_gym tasks; ``smollm2`` is the
first task set, two of whose tasks a fine-tune learns as a constant answer; ``smollm2-open`` the replacement,
chosen with `smollm2_task_pilot.py`; results under `<setting>/`).

Resumable: every fine-tune (task vector + metrics), every merge evaluation and every ξ grid is cached under
``--work`` (default ``<out>/cache``; the tiny cache and the smollm2 adapters are git-ignored, the smollm2
JSON results are committed) and skipped when present.
Run it in the background; ``--shard i/n`` (1 ≤ i ≤ n) splits the jobs over n processes (one thread each); each process
renders results.json / results.md / the plots from everything cached so far when it finishes
(``--render-only`` does just that).

Run:  nohup python benchmarks/efficacy_orthoreg.py --setting tiny > /tmp/efficacy.log 2>&1 &
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import shlex
import sys
import time
from pathlib import Path

import efficacy_report
import efficacy_toy
import torch

from distill_ortho_merge.run_record import git_commit, machine

toy = efficacy_toy  # the setting module (`efficacy_toy` or `efficacy_smollm2`), chosen by --setting in main()

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "benchmarks" / "results" / "efficacy_orthoreg"
# name -> (orthoreg_form, λ); plain is the paper's form at λ = 0
VARIANTS = {
    "plain": ("paper", 0.0),
    "paper_0.01": ("paper", 0.01),
    "paper_0.1": ("paper", 0.1),
    "paper_1": ("paper", 1.0),
    "scale_free_0.01": ("scale_free", 0.01),
    "scale_free_1": ("scale_free", 1.0),
    "inter_task_1": ("inter_task", 1.0),
    # λ 0.01: at the end of a plain LoRA run the term is ≈ 30–60 (smollm2-open), the task loss 0.01–0.8
    "flat_spectrum_0.01": ("flat_spectrum", 0.01),
    "flat_spectrum_0.1": ("flat_spectrum", 0.1),
    "l2_1": (
        "l2_norm",
        1.0,
    ),  # control: plain shrinkage Σ‖ΔW‖_F, registered below as a third-party form would be
}
CORE = ("plain", "paper_1", "scale_free_0.01", "inter_task_1")  # scale_free_1 stalls learning (seed 0)
METHODS = ("task_arithmetic", "ties", "tsv", "iso_c", "iso_cts")
GRID = {m: (0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.6, 0.8, 1.0) for m in METHODS}
GRID["ties"] = (
    0.1,
    0.25,
    0.5,
    0.75,
    1.0,
    1.5,
    2.0,
)  # TIES averages the agreeing entries: its scale is one task's
TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
HP = {  # one fine-tune per task; batch 128 (this machine's per-step overhead dominates small batches)
    "base_steps": 400,
    "base_lr": 2e-3,
    "steps": 100,
    "batch": 128,
    "lora": {"r": 8, "alpha": 8, "lr": 3e-3},
    "full": {"lr": 2e-4},
    "val_items": 64,
    "test_items": 256,
    "ties_density": 0.5,
    "xi_grid": (0.0, 0.25, 0.5, 0.75, 1.0, 1.25, 1.5),
    "xi_items": 64,
}


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def atomic_write(path: Path, write) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    write(tmp)
    os.replace(tmp, path)


def write_json(path: Path, data) -> None:
    atomic_write(path, lambda p: p.write_text(json.dumps(data, indent=1)))


def split(task: str, kind: str):
    n = HP["val_items"] if kind == "val" else HP["test_items"] if kind == "test" else HP["xi_items"]
    return toy.eval_batch(task, kind, n)


# -- base --------------------------------------------------------------------------------------------------
def base_state(work: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file, save_file

    if getattr(toy, "PRETRAINED", False):  # a real model: its own weights are the base
        return {k: v.detach().clone() for k, v in toy.make_model(0).state_dict().items()}
    path, lock = work / "base.safetensors", work / "base.lock"
    work.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        try:
            os.close(os.open(lock, os.O_CREAT | os.O_EXCL))
        except FileExistsError:  # another shard is pre-training it
            while not path.exists():
                time.sleep(10)
            return load_file(path)
        log(f"pre-training the base ({HP['base_steps']} steps, short inputs)")
        model = toy.make_model(0)
        toy.train(model, list(model.parameters()), toy.TASKS + toy.EXTRA, steps=HP["base_steps"],
                  lr=HP["base_lr"], batch_size=HP["batch"], long=False, seed=0, log=log)  # fmt: skip
        state = {k: v.detach().clone().contiguous() for k, v in model.state_dict().items()}
        atomic_write(path, lambda p: save_file(state, str(p)))
        lock.unlink(missing_ok=True)
    return load_file(path)


_EVAL_MODEL: list = []  # one model reused for every evaluation (building one costs more than loading weights)


def model_at(base: dict[str, torch.Tensor], delta: dict[str, torch.Tensor] | None = None, alpha: float = 1.0,
             fresh: bool = False):  # fmt: skip
    if fresh or not _EVAL_MODEL:
        model = toy.make_model(0)
        if not fresh:
            _EVAL_MODEL.append(model)
    else:
        model = _EVAL_MODEL[0]
    state = dict(base)
    for k, d in (delta or {}).items():
        state[k] = base[k] + alpha * d
    model.load_state_dict(state)
    return model.eval()


# -- fine-tuning ---------------------------------------------------------------------------------------------
class _ControlPlugin:
    """A benchmark-local `peft_orthoreg` plugin: the ``l2_norm`` form Σ_l ‖s·B·A‖_F (shrinks ΔW in every direction,
    the control for the inter-task form's shrinkage), exact from the factors: ‖sBA‖²_F = s²·tr(BᵀB·AAᵀ)."""

    @staticmethod
    def l2_norm(model, adapter_name=None, *, norm=None):
        from peft_orthoreg.lora import iter_lora_factors
        from peft_orthoreg.orthoreg import safe_sqrt

        terms = [
            s * s * ((b.T @ b) * (a @ a.T)).sum()
            for _, _, (a, b, s) in iter_lora_factors(model, adapter_name)
        ]
        return torch.stack([t if norm == "fro_squared" else safe_sqrt(t) for t in terms]).sum()

    from peft_orthoreg.hookspecs import hookimpl

    @hookimpl
    def peft_orthoreg_regularizers(self):
        return {"l2_norm": self.l2_norm}


def _register_control() -> None:
    from peft_orthoreg.plugins import plugin_registry

    if "l2_norm" not in plugin_registry.registry():
        plugin_registry.register(_ControlPlugin(), name="efficacy-control")


def finetune_lora(base, variant: str, seed: int, t: int, previous: list[dict]) -> tuple[dict, dict]:
    """LoRA task vector of task t (dense ΔW per weight) and its factors (for later inter-task references)."""
    from peft import LoraConfig, get_peft_model

    from peft_orthoreg import OrthoLoraConfig
    from peft_orthoreg.lora import form_loss, iter_lora_factors

    form, lam = VARIANTS[variant]
    _register_control()
    refs = [f"t{s}" for s in range(t)] if form == "inter_task" else []
    if form == "inter_task" and not refs:
        form, lam = "paper", 0.0  # the first task has nothing to be orthogonal to: plain
    lo = HP["lora"]
    common = {"r": lo["r"], "lora_alpha": lo["alpha"], "target_modules": TARGETS, "lora_dropout": 0.0}
    cfg = OrthoLoraConfig(
        **common, orthoreg_weight=lam, orthoreg_form=form, orthoreg_reference_adapters=refs or None
    )
    torch.manual_seed(seed * 1000 + t)
    model = get_peft_model(model_at(base, fresh=True), cfg, adapter_name=f"t{t}")
    modules = dict(model.named_modules())
    for s, factors in enumerate(previous):
        model.add_adapter(f"t{s}", LoraConfig(**common))
        with torch.no_grad():
            for name, (a, b) in factors.items():
                modules[name].lora_A[f"t{s}"].weight.copy_(a)
                modules[name].lora_B[f"t{s}"].weight.copy_(b)
    model.set_adapter(f"t{t}")
    for n, p in model.named_parameters():
        p.requires_grad_(f".t{t}." in n)  # only this task's factors train; references stay frozen
    params = [p for p in model.parameters() if p.requires_grad]
    reg = (lambda: lam * form_loss(model, f"t{t}")) if lam > 0 else None
    losses = toy.train(model, params, (toy.TASKS[t],), steps=HP["steps"], lr=lo["lr"], batch_size=HP["batch"],
                       long=True, seed=seed * 1000 + t, regulariser=reg, log=log)  # fmt: skip
    factors = {
        name: (a.detach().clone(), b.detach().clone(), float(s))
        for name, _, (a, b, s) in iter_lora_factors(model, f"t{t}")
    }
    return lora_delta(factors), {"losses": losses, "factors": factors}


def lora_delta(factors: dict[str, tuple]) -> dict[str, torch.Tensor]:
    """Dense ΔW = s·B·A per weight of the base model, from the LoRA factors (what is cached for LoRA runs)."""
    return {
        name.removeprefix("base_model.model.") + ".weight": s * b @ a for name, (a, b, s) in factors.items()
    }


def finetune_full(base, variant: str, seed: int, t: int, previous: list[dict]) -> tuple[dict, dict]:
    from peft_orthoreg.orthoreg import dense_inter_task_loss, dense_orthoreg_loss, dense_scale_free_loss

    form, lam = VARIANTS[variant]
    dense = {
        "paper": dense_orthoreg_loss,
        "scale_free": dense_scale_free_loss,
    }  # inter_task: below, with references
    if form not in (*dense, "inter_task"):
        raise ValueError(f"variant {variant!r}: form {form!r} is LoRA-only here; run it with --modes lora")
    model = model_at(base, fresh=True)
    chosen = {n: p for n, p in model.named_parameters() if any(f".{x}." in n for x in TARGETS)}
    for p in model.parameters():
        p.requires_grad_(False)
    for p in chosen.values():
        p.requires_grad_(True)
    w0 = {n: p.detach().clone() for n, p in chosen.items()}

    def reg() -> torch.Tensor:
        deltas = [p - w0[n] for n, p in chosen.items()]
        if form == "inter_task":
            return lam * dense_inter_task_loss(deltas, [[prev[n] for prev in previous] for n in chosen])
        return lam * dense[form](deltas)

    use_reg = lam > 0 and not (form == "inter_task" and not previous)
    losses = toy.train(model, list(chosen.values()), (toy.TASKS[t],), steps=HP["steps"], lr=HP["full"]["lr"],
                       batch_size=HP["batch"], long=True, seed=seed * 1000 + t,
                       regulariser=reg if use_reg else None, log=log)  # fmt: skip
    delta = {n: (p.detach() - w0[n]).clone() for n, p in chosen.items()}
    return delta, {"losses": losses}


def task_vectors(work: Path, base, mode: str, variant: str, seed: int) -> tuple[list[dict], list[dict]]:
    """The K task vectors of one (mode, variant, seed), fine-tuned in task order (cached one by one)."""
    from safetensors.torch import load_file, save_file

    tvs, infos, previous = [], [], []
    for t, task in enumerate(toy.TASKS):
        d = work / mode / variant / f"seed{seed}"
        tv_path, info_path = d / f"{task}.safetensors", d / f"{task}.json"
        delta = None  # the dense task vector, when this call fine-tunes it
        if tv_path.exists() and info_path.exists():
            blob = load_file(tv_path)
            info = json.loads(info_path.read_text())
        else:
            log(f"fine-tune {mode}/{variant}/seed{seed}/{task}")
            start = time.time()
            fn = finetune_lora if mode == "lora" else finetune_full
            delta, extra = fn(base, variant, seed, t, previous)
            if mode == "lora":  # the factors only: a dense copy of a real model's ΔW is hundreds of MB
                blob = {}
                for name, (a, b, scale) in extra["factors"].items():
                    blob[f"A::{name}"], blob[f"B::{name}"] = a.contiguous(), b.contiguous()
                    blob[f"S::{name}"] = torch.tensor(scale)
            else:
                blob = {f"delta::{k}": v.contiguous() for k, v in delta.items()}
            model = model_at(base, delta)
            info = {
                "val": toy.accuracy(model, split(task, "val")),
                "test": toy.accuracy(model, split(task, "test")),
                "losses": extra["losses"],
                "seconds": round(time.time() - start, 1),
            }
            atomic_write(tv_path, lambda p, blob=blob: save_file(blob, str(p)))
            write_json(info_path, info)
            log(f"  {task}: single val {info['val']:.3f} test {info['test']:.3f} ({info['seconds']} s)")
        if mode == "lora":
            names = [k.removeprefix("A::") for k in blob if k.startswith("A::")]
            factors = {n: (blob[f"A::{n}"], blob[f"B::{n}"], float(blob[f"S::{n}"])) for n in names}
            tvs.append(delta if delta is not None else lora_delta(factors))
            previous.append({n: (a, b) for n, (a, b, _) in factors.items()})
        else:
            tvs.append({k.removeprefix("delta::"): v for k, v in blob.items()})
            previous.append(tvs[-1])
        infos.append(info)
    return tvs, infos


# -- merging -------------------------------------------------------------------------------------------------
def merge_direction(method: str, tvs: list[dict]) -> dict[str, torch.Tensor]:
    from mergekit.merge_methods.generalized_task_arithmetic import get_mask
    from mergekit.sparsify import SparsificationMethod, sparsify

    from mergekit_plugins import core

    out = {}
    for key in tvs[0]:
        deltas = [tv[key] for tv in tvs]
        if method == "task_arithmetic":
            out[key] = torch.stack(deltas).sum(0)
        elif (
            method == "ties"
        ):  # mergekit's ties: magnitude top-density, sign consensus ("sum"), disjoint mean
            sparse = torch.stack(
                [sparsify(d, HP["ties_density"], SparsificationMethod.magnitude) for d in deltas]
            )
            mask = get_mask(sparse, method="sum").to(sparse.dtype)
            out[key] = (sparse * mask).sum(0) / mask.sum(0).clamp_min(1)
        else:
            out[key] = {"tsv": core.tsv_merge, "iso_c": core.iso_c_merge, "iso_cts": core.iso_cts_merge}[
                method
            ](deltas)
    return out


def evaluate_merges(base, tvs: list[dict], infos: list[dict], base_acc: dict) -> dict:
    val = {task: split(task, "val") for task in toy.TASKS}
    test = {task: split(task, "test") for task in toy.TASKS}
    result = {}
    for method in METHODS:
        direction = merge_direction(method, tvs)
        curve = []
        for alpha in GRID[method]:
            model = model_at(base, direction, alpha)
            accs = [toy.accuracy(model, val[task]) for task in toy.TASKS]
            norm = sum(a / max(i["val"], 1e-9) for a, i in zip(accs, infos, strict=True)) / len(accs)
            curve.append({"alpha": alpha, "val_acc": accs, "val_norm": norm})
        best = max(curve, key=lambda c: c["val_norm"])
        model = model_at(base, direction, best["alpha"])
        accs = [toy.accuracy(model, test[task]) for task in toy.TASKS]
        singles = [i["test"] for i in infos]
        bases = [base_acc[task] for task in toy.TASKS]
        result[method] = {
            "alpha": best["alpha"],
            "curve": curve,
            "test_acc": accs,
            "abs": sum(accs) / len(accs),
            "norm": sum(a / max(s, 1e-9) for a, s in zip(accs, singles, strict=True)) / len(accs),
            "gap_closed": sum(
                (a - b) / (s - b) if s != b else 0.0 for a, s, b in zip(accs, singles, bases, strict=True)
            )
            / len(accs),
        }
        log(
            f"  {method}: α {best['alpha']} abs {result[method]['abs']:.3f} norm {result[method]['norm']:.3f}"
        )
    return result


def geometry(tvs: list[dict]) -> dict:
    flat = [torch.cat([v.flatten() for v in tv.values()]) for tv in tvs]
    norms = [float(f.norm()) for f in flat]
    cos = [
        abs(float(flat[i] @ flat[j]) / (norms[i] * norms[j] + 1e-30))
        for i in range(len(flat))
        for j in range(i + 1, len(flat))
    ]
    from peft_orthoreg.diagnostics import matrix_stats

    stats = [matrix_stats(v) for tv in tvs for v in tv.values()]
    return {
        "tau_norm": norms,
        "mean_tau_norm": sum(norms) / len(norms),
        "mean_abs_cos": sum(cos) / len(cos),
        "mean_effective_rank": sum(s["effective_rank"] for s in stats) / len(stats),
        "mean_sv_max": sum(s["sv_max"] for s in stats) / len(stats),
    }


def xi_grid(base, tvs: list[dict]) -> dict:
    """Weight-disentanglement error ξ(α₁, α₂) of the first two tasks: Σ_t P_x∼t[f(θ₀+α_tτ_t) ≠ f(θ₀+α₁τ₁+α₂τ₂)]."""
    grid = HP["xi_grid"]
    batches = [split(task, "xi") for task in toy.TASKS[:2]]
    alone = [[toy.predictions(model_at(base, tvs[t], a), batches[t]) for a in grid] for t in range(2)]
    xi = []
    for i, a1 in enumerate(grid):
        row = []
        for j, a2 in enumerate(grid):
            both = {k: a1 * tvs[0][k] + a2 * tvs[1][k] for k in tvs[0]}
            model = model_at(base, both)
            err = 0.0
            for t in range(2):
                differs = toy.predictions(model, batches[t]) != alone[t][(i, j)[t]]
                err += float((differs.any(-1) if differs.dim() > 1 else differs).float().mean())
            row.append(err)
        xi.append(row)
    return {"grid": list(grid), "tasks": list(toy.TASKS[:2]), "xi": xi}


# -- driver --------------------------------------------------------------------------------------------------
def run_job(work: Path, base, base_acc: dict, mode: str, variant: str, seed: int, xi: bool) -> None:
    d = work / mode / variant / f"seed{seed}"
    if (d / "merge.json").exists() and (not xi or (d / "xi.json").exists()):
        return
    tvs, infos = task_vectors(work, base, mode, variant, seed)
    if not (d / "merge.json").exists():
        log(f"merge {mode}/{variant}/seed{seed}")
        write_json(d / "merge.json", {"merges": evaluate_merges(base, tvs, infos, base_acc), **geometry(tvs)})
    if xi and not (d / "xi.json").exists():
        log(f"ξ grid {mode}/{variant}/seed{seed}")
        write_json(d / "xi.json", xi_grid(base, tvs))


# -- the run record ----------------------------------------------------------------------------------------
def invocation(script: str, argv: list[str] | None, start: float, note: str = "", commit: str = "") -> dict:
    """One invocation of `script` for run.json: its command line, the commit it started at (the code that ran:
    run.json's top-level commit is the last render's), wall time, end time and optional note."""
    return {
        # shell-quoted, so that a recorded command (a --note with spaces) re-runs as written
        "command": shlex.join(
            ["python", os.path.relpath(script, ROOT), *(argv if argv is not None else sys.argv[1:])]
        ),
        **({"git_commit": commit} if commit else {}),
        "wall_s": round(time.time() - start, 1),
        "finished": time.strftime("%Y-%m-%d %H:%M:%S"),
        **({"note": note} if note else {}),
    }


def parse_shard(text: str) -> tuple[int, int] | None:
    """``"i/n"`` -> (i, n) with 1 ≤ i ≤ n (1-based, as `distillguard report --shard`), or None when `text` is not
    that: ``parse_shard("2/2") == (2, 2)``."""
    try:
        shard, shards = (int(x) for x in text.split("/"))
    except ValueError:
        return None
    return (shard, shards) if 1 <= shard <= shards else None


# setting -> (its module, its task set where the module has several)
SETTINGS = {
    "tiny": ("efficacy_toy", None),
    "smollm2": ("efficacy_smollm2", "v1"),
    "smollm2-open": ("efficacy_smollm2", "open"),
}


def use_setting(name: str) -> None:
    """Point the driver at setting `name` (a key of SETTINGS): its module, task set, hyper-parameters, α grids."""
    global toy
    module, task_set = SETTINGS[name]
    toy = importlib.import_module(module)
    if task_set is not None:
        toy.use_task_set(task_set)
    HP.update({k: v for k, v in getattr(toy, "HP", {}).items() if k != "grid"})
    GRID.update(getattr(toy, "HP", {}).get("grid", {}))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--setting", default="tiny", choices=list(SETTINGS))
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--modes", default=None, help="lora,full (default: both for tiny, lora for the others)")
    p.add_argument("--variants", default=",".join(VARIANTS))
    p.add_argument("--work", default=None, help="cache folder (default: <out>/cache)")
    p.add_argument(
        "--out", default=None, help=f"default {os.path.relpath(OUT, ROOT)}[/<setting> unless tiny]"
    )
    p.add_argument("--shard", default="1/1", help="i/n (1 ≤ i ≤ n): run every n-th job, starting at the i-th")
    p.add_argument("--threads", type=int, default=1, help="torch threads of this process")
    p.add_argument("--render-only", action="store_true")
    p.add_argument("--note", default="", help="recorded with this invocation in run.json")
    p.add_argument("--quick", action="store_true", help="a few steps and items: a smoke test of the pipeline")
    args = p.parse_args(argv)
    use_setting(args.setting)
    if args.quick:
        HP.update(base_steps=4, steps=3, batch=8, val_items=8, test_items=8, xi_items=8, xi_grid=(0.0, 1.0))
    args.modes = args.modes or ("lora,full" if args.setting == "tiny" else "lora")
    args.out = args.out or str(OUT if args.setting == "tiny" else OUT / args.setting)
    args.work = args.work or str(Path(args.out) / "cache")
    modes, variants = args.modes.split(","), args.variants.split(",")
    bad = [m for m in modes if m not in ("lora", "full")] + [v for v in variants if v not in VARIANTS]
    shard, shards = parse_shard(args.shard) or (0, 0)
    if not shards:
        bad.append(f"--shard {args.shard}")
    if bad or args.seeds < 1:
        print(f"efficacy_orthoreg: unknown or invalid: {', '.join(bad) or '--seeds'}", file=sys.stderr)
        return 2
    torch.set_num_threads(args.threads)
    work, out = Path(args.work), Path(args.out)
    # the code that runs: its commit at the start (edits made while it runs do not count)
    start, start_commit = time.time(), git_commit()
    if not args.render_only:
        base = base_state(work)
        base_path = work / "base_acc.json"
        if not base_path.exists():
            model = model_at(base)
            write_json(
                base_path,
                {t: {k: toy.accuracy(model, split(t, k)) for k in ("val", "test")} for t in toy.TASKS},
            )
        base_acc = {t: v["test"] for t, v in json.loads(base_path.read_text()).items()}
        # LoRA first; within a mode the headline variants for every seed first, then the other λ values.
        tier = {v: int(v not in CORE) for v in variants}
        jobs = [
            (m, v, s)
            for m in modes
            for t in (0, 1)
            for s in range(args.seeds)
            for v in variants
            if tier[v] == t
        ]
        for i, (m, v, s) in enumerate(jobs):
            if i % shards == shard - 1:
                log(f"job {i + 1}/{len(jobs)}: {m}/{v}/seed{s}")
                run_job(work, base, base_acc, m, v, s, xi=(s == 0 and m == "lora"))
    majority_path = work / "majority_acc.json"  # a constant predictor's test score (settings that define one)
    if hasattr(toy, "majority_accuracy") and not majority_path.exists():
        write_json(majority_path, {t: toy.majority_accuracy(t, "test", HP["test_items"]) for t in toy.TASKS})
    efficacy_report.render(
        work,
        out,
        VARIANTS,
        METHODS,
        {**HP, "grid": GRID},
        {"git_commit": git_commit(), "machine": machine(args.threads), "setting": args.setting},
        invocation(__file__, argv, start, args.note, start_commit),
    )
    log(f"rendered {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
