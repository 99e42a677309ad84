import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import Dataset
from torchvision.transforms import v2

from dasl.metrics import linear_probe
from dasl.metrics.linear_eval import extract_features, linear_eval

# Six classes coloured by the octahedron's vertices +-e_r, +-e_g, +-e_b around grey: each class
# mean is a vertex of the hull, so a linear map of the mean colour separates them all.
COLOURS = torch.tensor(
    [[1, 0, 0], [-1, 0, 0], [0, 1, 0], [0, -1, 0], [0, 0, 1], [0, 0, -1]], dtype=torch.float32
)


class ColourImages(Dataset):
    def __init__(self, per_class, seed, noise=0.1, transform=None, unlabeled=False):
        g = torch.Generator().manual_seed(seed)
        self.labels = np.repeat(np.arange(6), per_class)
        base = 0.5 + 0.3 * COLOURS[self.labels][:, :, None, None]
        self.images = base + noise * torch.randn(len(self.labels), 3, 8, 8, generator=g)
        self.num_classes = 6
        self.transform = transform
        if unlabeled:
            self.labels = np.full_like(self.labels, -1)

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        x = self.images[i]
        return (self.transform(x) if self.transform else x), int(self.labels[i])


def frozen_backbone():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 16, 1), nn.BatchNorm2d(16), nn.AdaptiveAvgPool2d(1))
    with torch.no_grad():  # running stats unlike the init ones, so using them matters
        net[1].running_mean.uniform_(-0.5, 0.5)
        net[1].running_var.uniform_(0.5, 2.0)
    return net


CROPS = v2.Compose(
    [v2.RandomResizedCrop(8, scale=(0.5, 1.0), antialias=True), v2.RandomHorizontalFlip()]
)


def test_separable_reaches_100_percent_and_backbone_stays_frozen():
    net = frozen_backbone().train()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    train = ColourImages(20, seed=1, transform=CROPS)
    test = ColourImages(10, seed=2)
    r = linear_eval(net, train, test, epochs=8, lr=0.5, batch_size=16)
    assert r["top1"] == 1.0 and r["top5"] == 1.0
    assert r["epochs"] == 8 and r["augment"] is True
    after = net.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # BN stats and weights
    assert net.training  # the caller's mode is restored


def test_hard_data_top5_at_least_top1_and_seeded():
    net = frozen_backbone()
    train = ColourImages(8, seed=3, noise=1.5, transform=CROPS)
    test = ColourImages(8, seed=4, noise=1.5)
    kw = {"epochs": 3, "lr": 0.2, "batch_size": 8}
    a = linear_eval(net, train, test, seed=5, **kw)
    b = linear_eval(net, train, test, seed=5, **kw)
    assert a == b
    assert 0.0 < a["top1"] < 1.0 and a["top5"] >= a["top1"]


def test_fast_mode_is_the_probe_on_extracted_features():
    net = frozen_backbone()
    train, test = ColourImages(6, seed=6, noise=0.8), ColourImages(4, seed=7, noise=0.8)
    r = linear_eval(net, train, test, epochs=4, lr=0.3, batch_size=8, augment=False, seed=2)
    feats = lambda x: net.eval()(x).flatten(1)  # noqa: E731
    x_tr, y_tr = extract_features(feats, train, 8, torch.device("cpu"))
    x_te, y_te = extract_features(feats, test, 8, torch.device("cpu"))
    want = linear_probe(x_tr, y_tr, x_te, y_te, epochs=4, lr=0.3, batch_size=8, seed=2)
    assert {k: r[k] for k in want} == want


def test_embedding_model_contributes_its_backbone_features():
    from dasl.models import build_model

    model = build_model("small_cnn", embedding_dim=4, in_channels=3)
    train, test = ColourImages(4, seed=8), ColourImages(2, seed=9)
    r = linear_eval(model, train, test, epochs=1, lr=0.1, batch_size=12, ks=(1,))
    assert set(r) == {"top1", "epochs", "augment"}


def test_errors():
    net = frozen_backbone()
    test = ColourImages(2, seed=0)
    with pytest.raises(ValueError, match="unlabeled items"):
        linear_eval(net, ColourImages(2, seed=0, unlabeled=True), test, epochs=1, lr=0.1,
                    batch_size=4)  # fmt: skip
    with pytest.raises(ValueError, match="top-7 accuracy needs at least 7 classes"):
        linear_eval(net, test, test, epochs=1, lr=0.1, batch_size=4, ks=(1, 7))
    with pytest.raises(ValueError, match="lr must be a positive number"):
        linear_eval(net, test, test, epochs=1, lr=0, batch_size=4)
