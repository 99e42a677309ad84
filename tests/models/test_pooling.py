import pytest
import torch

from dasl.models.pooling import POOLINGS, GlobalPool


def _manual(x: torch.Tensor, mode: str) -> torch.Tensor:
    n, c, h, w = x.shape
    out = torch.zeros(n, c, dtype=torch.float64)
    for i in range(n):
        for j in range(c):
            vals = [float(x[i, j, a, b]) for a in range(h) for b in range(w)]
            avg, mx = sum(vals) / len(vals), max(vals)
            out[i, j] = {"avg": avg, "max": mx, "avg+max": avg + mx}[mode]
    return out


@pytest.mark.parametrize("mode", POOLINGS)
@pytest.mark.parametrize("shape", [(2, 3, 4, 5), (1, 7, 1, 1), (3, 2, 3, 3)])
def test_pooling_matches_manual(mode, shape):
    x = torch.randn(*shape, generator=torch.Generator().manual_seed(sum(shape)))
    got = GlobalPool(mode)(x)
    assert got.shape == shape[:2]
    torch.testing.assert_close(got.double(), _manual(x, mode), rtol=1e-6, atol=1e-6)


def test_avg_max_is_sum_not_concat():
    x = torch.randn(2, 4, 3, 3)
    got = GlobalPool("avg+max")(x)
    assert got.shape == (2, 4)
    torch.testing.assert_close(got, GlobalPool("avg")(x) + GlobalPool("max")(x))


def test_unknown_pooling_lists_valid_values():
    with pytest.raises(ValueError, match=r"'gem'.*avg\+max"):
        GlobalPool("gem")


def test_pooled_input_passes_through_and_bad_rank_rejected():
    x = torch.randn(3, 5)
    assert GlobalPool("max")(x) is x
    with pytest.raises(ValueError, match="N, C, H, W"):
        GlobalPool("avg")(torch.randn(2, 3, 4))
