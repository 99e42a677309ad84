"""Coverage of the DAR chain estimator's arrangements (#19): distinct class pairs per chain.

A chain ``b_0 .. b_{N-1}`` contributes the columns ``z_{b_t} - z_{b_{t+1}}`` between different
labels. This counts, per chain, the valid steps and the distinct unordered class pairs they
join, averaged over random permutations, for three arrangements of the permutation:

- ``walk``: the greedy walk of 85eca12 (host loop; consecutive labels differ where possible);
- ``interleave``: the class-grouped even/odd interleave of 70afae2;
- ``perm``: the permutation itself, equal-label steps masked (``dasl.dar.pairs.chain_steps``).

``python -m benchmarks.chain_coverage`` prints a markdown table (a few seconds).
"""

from __future__ import annotations

import argparse
import itertools
from collections.abc import Callable, Sequence

import torch

from dasl.dar.pairs import chain_steps


def walk_order(perm: Sequence[int], labels: Sequence[int]) -> list[int]:
    """The 85eca12 greedy walk: a dominant label (over half of what is left) first, else the
    first remaining item whose label differs from the previous one."""
    remaining = list(perm)
    counts: dict[int, int] = {}
    for i in remaining:
        counts[labels[i]] = counts.get(labels[i], 0) + 1
    order: list[int] = []
    prev: int | None = None
    while remaining:
        top = max(counts.values())
        pick = -1
        if 2 * top > len(remaining):
            dominant = next(c for c, k in counts.items() if k == top)
            if dominant != prev:
                pick = next(t for t, i in enumerate(remaining) if labels[i] == dominant)
        if pick < 0:
            pick = next((t for t, i in enumerate(remaining) if labels[i] != prev), 0)
        item = remaining.pop(pick)
        counts[labels[item]] -= 1
        if counts[labels[item]] == 0:
            del counts[labels[item]]
        order.append(item)
        prev = labels[item]
    return order


def interleave_order(perm: Sequence[int], labels: Sequence[int]) -> list[int]:
    """The 70afae2 arrangement: classes listed in blocks (dominant first), the first
    ``ceil(N/2)`` listed items at the even positions, the rest at the odd ones."""
    n = len(perm)
    pos = {item: t for t, item in enumerate(perm)}
    counts: dict[int, int] = {}
    first: dict[int, int] = {}
    for t, item in enumerate(perm):
        counts[labels[item]] = counts.get(labels[item], 0) + 1
        first.setdefault(labels[item], t)
    dominant = min(counts, key=lambda c: (-counts[c], first[c]))
    listed = sorted(perm, key=lambda i: (labels[i] != dominant, first[labels[i]], pos[i]))
    evens = (n + 1) // 2
    odd_slots = list(range(1, n, 2))
    if counts[dominant] > evens:
        odd_slots.reverse()
    order = [-1] * n
    for t, item in enumerate(listed):
        order[2 * t if t < evens else odd_slots[t - evens]] = item
    return order


def perm_order(perm: Sequence[int], labels: Sequence[int]) -> list[int]:
    """The chain of ``chain_steps``, read back from its steps."""
    src, dst, _ = chain_steps(torch.tensor(list(perm)), torch.tensor(list(labels)))
    return [*src.tolist(), int(dst[-1])]


ARRANGEMENTS: dict[str, Callable[[Sequence[int], Sequence[int]], list[int]]] = {
    "walk": walk_order,
    "interleave": interleave_order,
    "perm": perm_order,
}

#: (name, class sizes)
COMPOSITIONS: tuple[tuple[str, tuple[int, ...]], ...] = (
    ("60 x 2", (2,) * 60),
    ("30 x 4", (4,) * 30),
    ("15 x 8", (8,) * 15),
    ("8 x 15", (15,) * 8),
    ("4 x 30", (30,) * 4),
    ("2 x 60", (60,) * 2),
    ("1 x 60 + 60 x 1", (60,) + (1,) * 60),
)


def coverage(
    order_fn: Callable[[Sequence[int], Sequence[int]], list[int]],
    sizes: Sequence[int],
    draws: int,
    seed: int,
) -> tuple[float, float]:
    """Mean (valid steps, distinct unordered class pairs) per chain over ``draws`` permutations."""
    labels = [c for c, k in enumerate(sizes) for _ in range(k)]
    g = torch.Generator().manual_seed(seed)
    steps = pairs = 0
    for _ in range(draws):
        order = order_fn(torch.randperm(len(labels), generator=g).tolist(), labels)
        joined = [
            (min(labels[a], labels[b]), max(labels[a], labels[b]))
            for a, b in itertools.pairwise(order)
            if labels[a] != labels[b]
        ]
        steps += len(joined)
        pairs += len(set(joined))
    return steps / draws, pairs / draws


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--draws", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    names = list(ARRANGEMENTS)
    head = " | ".join(f"{n}: steps / class pairs" for n in names)
    print(f"| batch (classes x size) | class pairs | {head} |")
    print("|---|---|" + "---|" * len(names))
    for label, sizes in COMPOSITIONS:
        k = len(sizes)
        cells = []
        for name in names:
            steps, pairs = coverage(ARRANGEMENTS[name], sizes, args.draws, args.seed)
            cells.append(f"{steps:.1f} / {pairs:.1f}")
        print(f"| {label} | {k * (k - 1) // 2} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
