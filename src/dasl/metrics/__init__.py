"""Evaluation: exact kNN, ranking metrics (Recall@K, MAP@R, R-precision), NMI, faiss indexes,
weighted k-NN classification of frozen features (the SSL k-NN protocol)."""

from dasl.metrics.clustering import kmeans_assign, nmi
from dasl.metrics.faiss_index import build_faiss_index, save_faiss_index
from dasl.metrics.knn import knn
from dasl.metrics.knn_classify import knn_classify
from dasl.metrics.ranking import map_at_r, r_precision, recall_at_k
from dasl.metrics.retrieval import retrieval_metrics

__all__ = [
    "build_faiss_index",
    "kmeans_assign",
    "knn",
    "knn_classify",
    "map_at_r",
    "nmi",
    "r_precision",
    "recall_at_k",
    "retrieval_metrics",
    "save_faiss_index",
]
