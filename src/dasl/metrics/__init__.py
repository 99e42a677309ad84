"""Evaluation: exact kNN, ranking metrics (Recall@K, MAP@R, R-precision), NMI, faiss indexes,
weighted k-NN classification and linear probes of frozen features (the SSL evaluations)."""

from dasl.metrics.clustering import kmeans_assign, nmi
from dasl.metrics.faiss_index import build_faiss_index, save_faiss_index
from dasl.metrics.knn import knn
from dasl.metrics.knn_classify import knn_classify
from dasl.metrics.linear_probe import LinearProbe, fit_linear_probe, linear_probe
from dasl.metrics.ranking import map_at_r, r_precision, recall_at_k
from dasl.metrics.retrieval import retrieval_metrics

__all__ = [
    "LinearProbe",
    "build_faiss_index",
    "fit_linear_probe",
    "kmeans_assign",
    "knn",
    "knn_classify",
    "linear_probe",
    "map_at_r",
    "nmi",
    "r_precision",
    "recall_at_k",
    "retrieval_metrics",
    "save_faiss_index",
]
