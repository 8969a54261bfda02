"""Contrastive InfoNCE with in-batch negatives, as Tevatron's `EncoderModel.forward` computes it."""

from __future__ import annotations


def info_nce(q_reps, p_reps, temperature: float):
    """Mean cross-entropy of each query against ALL passages of the micro-batch.

    p_reps holds the groups back to back (query i's positive at row i x group_size, then its negatives),
    so every other query's passages act as extra negatives. Scores are dot products (the reps are already
    normalised when the recipe says so) divided by the temperature.
    """
    import torch
    import torch.nn.functional as F

    n_q, n_p = q_reps.size(0), p_reps.size(0)
    if n_q == 0 or n_p % n_q:
        raise ValueError(f"{n_p} passages do not split into groups for {n_q} queries")
    scores = q_reps @ p_reps.T / temperature
    target = torch.arange(n_q, device=scores.device) * (n_p // n_q)
    return F.cross_entropy(scores.float(), target)
