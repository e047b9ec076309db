"""Slow, obvious reference implementations shared by several test modules (one home, so no test module imports
another): the merge methods written like the official repos, and an unpadded log-probability loop."""

from __future__ import annotations

import torch

F64 = torch.float64


# ---- independent references: transcriptions of the official repos (zero-padded concatenations, full SVDs) ----
def ref_polar(x):
    u, _, vh = torch.linalg.svd(x, full_matrices=False)
    return u @ vh


def ref_tsv(deltas):
    T = len(deltas)
    r = min(deltas[0].shape)
    k = int(r // T)
    sum_u = sum_s = sum_v = None
    for i, delta in enumerate(deltas):
        u, s, v = torch.linalg.svd(delta, full_matrices=False)
        if i == 0:
            sum_u, sum_s, sum_v = torch.zeros_like(u), torch.zeros_like(s), torch.zeros_like(v)
        sum_u[:, i * k : (i + 1) * k] = u[:, :k]
        sum_s[i * k : (i + 1) * k] = s[:k]
        sum_v[i * k : (i + 1) * k, :] = v[:k, :]
    return torch.linalg.multi_dot((ref_polar(sum_u), torch.diag(sum_s), ref_polar(sum_v)))


def ref_iso_c(deltas):
    u, s, v = torch.linalg.svd(sum(deltas), full_matrices=False)
    return torch.linalg.multi_dot((u, torch.diag(torch.ones_like(s) * s.mean()), v))


def ref_iso_cts(deltas, fraction=0.8):
    T, r = len(deltas), min(deltas[0].shape)
    k_c = int(r * fraction)
    k_c = r - round((r - k_c) / T) * T
    per_task = int((r - k_c) / T)
    u, s, v = torch.linalg.svd(sum(deltas), full_matrices=False)
    cu, cs, cv = u[:, :k_c], s[:k_c], v[:k_c, :]
    U = torch.zeros(deltas[0].shape[0], r, dtype=F64)
    S = torch.zeros(r, dtype=F64)
    V = torch.zeros(r, deltas[0].shape[1], dtype=F64)
    for i, w in enumerate(deltas):
        w_ts = w - cu @ cu.T @ w
        tu, ts, tv = torch.linalg.svd(w_ts, full_matrices=False)
        U[:, i * per_task : (i + 1) * per_task] = tu[:, :per_task]
        S[i * per_task : (i + 1) * per_task] = ts[:per_task]
        V[i * per_task : (i + 1) * per_task, :] = tv[:per_task, :]
    U[:, T * per_task : T * per_task + k_c] = cu
    S[T * per_task : T * per_task + k_c] = cs
    V[T * per_task : T * per_task + k_c, :] = cv
    return torch.linalg.multi_dot((ref_polar(U), torch.diag(torch.ones_like(S) * S.mean()), ref_polar(V)))


def slow_logprob(model, ids: list[int], prompt_len: int, temperature: float = 1.0) -> float:
    """Reference: one unpadded forward, a Python loop over the completion positions."""
    with torch.no_grad():
        logits = model(input_ids=torch.tensor([ids])).logits[0].double() / temperature
    total = 0.0
    for pos in range(prompt_len, len(ids)):
        total += torch.log_softmax(logits[pos - 1], dim=-1)[ids[pos]].item()
    return total
