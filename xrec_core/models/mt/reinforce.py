"""REINFORCE with a baseline and Monte Carlo rollouts (Lu, Dong & Smyth, RecSys 2018, Sec. 3.1.3, Eq. 3).

The generator is a policy over tokens; its reward is the discriminator's probability that the
finished review is authentic. The gradient of J(theta) is estimated as

    grad J ~= 1/K sum_i grad log G(Y'_i) (R(Y'_i) - b(Y'_i))                          (Eq. 3)

with per-step rewards from Monte Carlo search (as in Li et al. 2017, ref. [26]): the reward of
the prefix y_1..y_t is the mean discriminator score of ``n_rollouts`` completions sampled from
the generator; the last step uses the finished sequence itself.

Choice (the paper does not define b): the baseline is the batch mean of the rewards at the same
step, which leaves the estimator unbiased (it does not depend on the sampled action of the row
it is applied to, up to the 1/B self term; ``leave_one_out=True`` removes that term exactly).
"""

from __future__ import annotations

from collections.abc import Callable

import torch


def batch_baseline(rewards: torch.Tensor, mask: torch.Tensor, leave_one_out: bool = True) -> torch.Tensor:
    """Per-step baseline b_t: mean reward of the other rows at step t (or of all rows).

    rewards, mask : (B, T) -> (B, T)
    """
    total = (rewards * mask).sum(dim=0, keepdim=True)                             # (1, T)
    count = mask.sum(dim=0, keepdim=True)                                         # (1, T)
    if leave_one_out:
        return ((total - rewards * mask) / (count - mask).clamp(min=1)) * mask
    return (total / count.clamp(min=1)) * mask


def reinforce_loss(log_probs: torch.Tensor, rewards: torch.Tensor, baseline: torch.Tensor | float,
                   mask: torch.Tensor) -> torch.Tensor:
    """Surrogate loss whose gradient is minus the Eq. 3 estimate.

    Parameters
    ----------
    log_probs : (B, T) tensor with grad
        log G(y_t | y_<t) of the sampled tokens.
    rewards : (B, T) tensor
        Reward of each step (Monte Carlo estimates); no gradient flows through it.
    baseline : (B, T) tensor or float
        b, subtracted from the reward.
    mask : (B, T) tensor
        1 for real tokens.
    """
    advantage = (rewards - baseline).detach() * mask                              # (B, T)
    return -(log_probs * advantage).sum() / log_probs.shape[0]


@torch.no_grad()
def monte_carlo_rewards(sequences: torch.Tensor, mask: torch.Tensor,
                        complete: Callable[[torch.Tensor], torch.Tensor],
                        reward: Callable[[torch.Tensor], torch.Tensor], n_rollouts: int,
                        stride: int = 1) -> torch.Tensor:
    """Per-step rewards of sampled sequences (B, T) by Monte Carlo search.

    Parameters
    ----------
    sequences : (B, T) token ids sampled from the generator.
    mask : (B, T) 1 for real tokens (EOS included).
    complete : callable
        ``complete(prefix (B, t)) -> (B, T)``: the prefix continued by sampling from the generator.
    reward : callable
        ``reward(sequences (B, T)) -> (B,)``: discriminator probability of being authentic.
    n_rollouts : int
        Completions averaged per intermediate step.
    stride : int
        Roll out from every ``stride``-th prefix only; the steps in between take the estimate of
        the next evaluated prefix (``stride=1``, the paper's setting, evaluates every step; a
        larger stride is a CPU economy, see the chapter).

    Returns
    -------
    (B, T) rewards, zero where ``mask`` is zero.
    """
    b, t_max = sequences.shape
    out = torch.zeros(b, t_max, device=sequences.device)
    lengths = mask.sum(dim=1).long()                                             # (B,)
    final = reward(sequences)                                                     # (B,)
    if stride < 1:
        raise ValueError(f"stride must be >= 1, got {stride}")
    nxt = final                                                                   # estimate of the next evaluated prefix
    for t in range(t_max, 0, -1):
        is_last = lengths == t
        if (t % stride == 0) and n_rollouts > 0 and bool((lengths > t).any()):
            prefix = sequences[:, :t]
            acc = torch.zeros(b, device=sequences.device)
            for _ in range(n_rollouts):
                acc += reward(complete(prefix))
            nxt = torch.where(lengths > t, acc / n_rollouts, nxt)
        nxt = torch.where(is_last, final, nxt)                                    # a row's last token: its own reward
        out[:, t - 1] = nxt
    return out * mask
