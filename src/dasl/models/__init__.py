"""Embedding models: a backbone trunk, global pooling and a linear embedding head.

``build_model("resnet50", embedding_dim=512, pretrained=True, pooling="avg+max")`` is the usual
entry point; see :func:`dasl.models.build.build_model`.
"""

from dasl.models.backbones import BACKBONES, Backbone, create_backbone, input_normalization
from dasl.models.build import build_model
from dasl.models.embedding import EmbeddingModel
from dasl.models.pooling import POOLINGS, GlobalPool
from dasl.models.pretrained import LoadReport, adapt_input_conv, load_weights, read_state_dict
from dasl.models.small_cnn import SmallCNN

__all__ = [
    "BACKBONES",
    "POOLINGS",
    "Backbone",
    "EmbeddingModel",
    "GlobalPool",
    "LoadReport",
    "SmallCNN",
    "adapt_input_conv",
    "build_model",
    "create_backbone",
    "input_normalization",
    "load_weights",
    "read_state_dict",
]
