"""Soft-voting ensembles of trained classifiers, exportable as one ONNX graph.

An ensemble is not in the architecture registry (:data:`fmnist.models.ARCHITECTURES`): it is
assembled from already trained members with :func:`build_ensemble`, not trained from a config.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
import torch
from torch import Tensor, nn


def _temperatures(temperatures: Sequence[float] | None, k: int) -> list[float]:
    temps = [1.0] * k if temperatures is None else [float(t) for t in temperatures]
    if len(temps) != k:
        raise ValueError(f"{k} members but {len(temps)} temperatures")
    if not all(math.isfinite(t) and t > 0 for t in temps):
        raise ValueError(f"temperatures must be finite and positive, got {temps}")
    return temps


class SoftVotingEnsemble(nn.Module):
    """Average the class probabilities of ``members``; return their log as "logits".

    Each member takes the same normalised ``(N, 1, 28, 28)`` input and returns logits; its
    probabilities are ``softmax(logits / temperatures[i])``. With ``tta`` each member also sees
    the horizontally mirrored image and its two probability vectors are averaged. Members are
    combined with ``weights`` (normalised to sum to 1; equal by default; members with weight 0
    are skipped). The output is ``log(sum_i w_i p_i)``, computed as a log-sum-exp of the
    members' log-probabilities so it stays finite, so ``softmax(output) == sum_i w_i p_i``: the
    project's :class:`~fmnist.registry.onnx_export.InferenceModel` with temperature 1 serves
    exactly the ensemble average (another temperature sharpens or flattens that average).
    """

    log_weights: Tensor
    temperatures: Tensor

    def __init__(
        self,
        members: Sequence[nn.Module],
        weights: Sequence[float] | None = None,
        temperatures: Sequence[float] | None = None,
        tta: bool = False,
    ) -> None:
        """Combine ``members``; ``weights`` >= 0 with a positive sum, ``temperatures`` > 0."""
        super().__init__()
        if not members:
            raise ValueError("an ensemble needs at least one member")
        k = len(members)
        raw = [1.0] * k if weights is None else [float(w) for w in weights]
        if len(raw) != k or not all(math.isfinite(w) and w >= 0 for w in raw) or sum(raw) <= 0:
            raise ValueError(
                f"weights must be {k} finite non-negative numbers with a positive sum, got {raw}"
            )
        temps = _temperatures(temperatures, k)
        total = sum(raw)
        self.members = nn.ModuleList(members)
        self.weights: tuple[float, ...] = tuple(w / total for w in raw)
        """The normalised member weights (summing to 1)."""
        self.tta = tta
        self._active = tuple(i for i, w in enumerate(self.weights) if w > 0)
        self.register_buffer(
            "log_weights",
            torch.tensor([math.log(self.weights[i]) for i in self._active]),
            persistent=False,
        )
        self.register_buffer("temperatures", torch.tensor(temps), persistent=False)

    def member_log_probs(self, x: Tensor) -> Tensor:
        """Per-member log-probabilities ``(K, N, classes)`` (TTA-averaged) of active members."""
        views = [x, x.flip(-1)] if self.tta else [x]
        out = []
        for i in self._active:
            member = self.members[i]
            logs = [torch.log_softmax(member(v).float() / self.temperatures[i], -1) for v in views]
            if len(logs) == 1:
                out.append(logs[0])
            else:
                out.append(torch.logsumexp(torch.stack(logs), 0) - math.log(len(logs)))
        return torch.stack(out)

    def forward(self, x: Tensor) -> Tensor:
        """``log`` of the weighted average member probabilities, ``(N, classes)``."""
        weighted = self.member_log_probs(x) + self.log_weights[:, None, None]
        return torch.logsumexp(weighted, dim=0)


def build_ensemble(
    members: Sequence[nn.Module],
    weights: Sequence[float] | npt.NDArray[np.floating] | None = None,
    tta: bool = False,
    temperatures: Sequence[float] | None = None,
) -> SoftVotingEnsemble:
    """A :class:`SoftVotingEnsemble` of trained ``members`` in eval mode.

    Members are used as they are (not copied); ``weights`` may come from
    :func:`weights_from_validation`.
    """
    w = None if weights is None else [float(v) for v in weights]
    return SoftVotingEnsemble(members, w, temperatures, tta).eval()


def weights_from_validation(
    member_logits: list[npt.NDArray[np.floating]],
    labels: npt.ArrayLike,
    *,
    temperatures: Sequence[float] | None = None,
    sharpness: float = 1.0,
) -> npt.NDArray[np.float64]:
    """Member weights from validation NLL: ``w_i ∝ exp(-sharpness * NLL_i)``.

    ``NLL_i`` is the mean negative log-likelihood of ``labels`` under member ``i``'s
    ``softmax(logits / temperatures[i])`` (logits ``(N, classes)``). With ``sharpness = 1``
    this is both "proportional to exp(-mean NLL)" (each member's geometric-mean probability of
    the true class) and "a softmax over negative NLL": the two are the same normalisation.
    Members with similar NLL get similar weights; larger ``sharpness`` favours the best.
    Returns float64 weights summing to 1.
    """
    if not member_logits:
        raise ValueError("no member logits given")
    y = np.asarray(labels).astype(np.int64).ravel()
    k = len(member_logits)
    temps = _temperatures(temperatures, k)
    if not (math.isfinite(sharpness) and sharpness >= 0):
        raise ValueError(f"sharpness must be finite and non-negative, got {sharpness}")
    nll = np.empty(k, dtype=np.float64)
    for i, (logits, t) in enumerate(zip(member_logits, temps, strict=True)):
        z = np.asarray(logits, dtype=np.float64) / t
        if z.ndim != 2 or len(z) != len(y) or len(y) == 0:
            raise ValueError(f"member {i}: logits {z.shape} do not match {len(y)} labels")
        if y.min() < 0 or y.max() >= z.shape[1]:
            raise ValueError(f"labels must be in [0, {z.shape[1]})")
        z = z - z.max(axis=1, keepdims=True)
        log_probs = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
        nll[i] = -log_probs[np.arange(len(y)), y].mean()
    scores = -sharpness * nll
    weights = np.exp(scores - scores.max())
    result: npt.NDArray[np.float64] = weights / weights.sum()
    return result


def mixture_weights(
    member_log_probs: npt.ArrayLike,
    labels: npt.ArrayLike,
    *,
    iterations: int = 500,
    tolerance: float = 1e-9,
) -> tuple[npt.NDArray[np.float64], float]:
    """Maximum-likelihood soft-voting weights on validation data, by expectation-maximisation.

    ``member_log_probs`` ``(K, N, classes)`` are the members' (calibrated, TTA-averaged)
    log-probabilities. The weights ``w`` maximise the mean log-likelihood of ``labels`` under
    the mixture ``sum_i w_i p_i``; EM for mixture weights with fixed components raises it at
    every step and converges to the global optimum (the objective is concave in ``w``). Unlike
    :func:`weights_from_validation`, a member that adds nothing gets a weight near zero.
    Returns ``(weights summing to 1, mean NLL of the weighted mixture)``.
    """
    log_p = np.asarray(member_log_probs, dtype=np.float64)
    y = np.asarray(labels).astype(np.int64).ravel()
    if log_p.ndim != 3 or log_p.shape[1] != len(y) or len(y) == 0:
        raise ValueError(f"member log-probabilities {log_p.shape} do not match {len(y)} labels")
    true = log_p[:, np.arange(len(y)), y]  # (K, N): log p_i(y_n | x_n)
    k = len(true)
    weights = np.full(k, 1.0 / k)
    previous = math.inf
    for _ in range(iterations):
        joint = true + np.log(np.maximum(weights, 1e-300))[:, None]
        mixture = np.logaddexp.reduce(joint, axis=0)  # (N,)
        nll = float(-mixture.mean())
        weights = np.exp(joint - mixture).mean(axis=1)  # responsibilities, averaged
        if previous - nll < tolerance:
            break
        previous = nll
    joint = true + np.log(np.maximum(weights, 1e-300))[:, None]
    nll = float(-np.logaddexp.reduce(joint, axis=0).mean())
    result: npt.NDArray[np.float64] = weights / weights.sum()
    return result, nll
