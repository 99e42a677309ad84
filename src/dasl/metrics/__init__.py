"""Evaluation: exact kNN, ranking metrics (Recall@K, MAP@R, R-precision), NMI, the inter-class
distance CV, weighted k-NN classification and linear probes of frozen features (the SSL
evaluations)."""

from dasl.metrics.clustering import kmeans_assign, nmi
from dasl.metrics.interclass import interclass_cv, interclass_distance_stats
from dasl.metrics.knn import knn
from dasl.metrics.knn_classify import knn_classify
from dasl.metrics.linear_probe import LinearProbe, fit_linear_probe, linear_probe
from dasl.metrics.ranking import map_at_r, r_precision, recall_at_k
from dasl.metrics.retrieval import retrieval_metrics

__all__ = [
    "LinearProbe",
    "fit_linear_probe",
    "interclass_cv",
    "interclass_distance_stats",
    "kmeans_assign",
    "knn",
    "knn_classify",
    "linear_probe",
    "map_at_r",
    "nmi",
    "r_precision",
    "recall_at_k",
    "retrieval_metrics",
]
