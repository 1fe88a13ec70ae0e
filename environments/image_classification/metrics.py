"""Imbalanced-classification metrics: G-mean, minority recall/precision/F1, confusion matrix."""

from __future__ import annotations

import numpy as np

__all__ = ["classification_report", "confusion_matrix", "g_mean"]


def confusion_matrix(labels: np.ndarray, predictions: np.ndarray, num_labels: int) -> np.ndarray:
    """Counts: row = true label, column = predicted label."""
    matrix = np.zeros((num_labels, num_labels), np.int64)
    np.add.at(matrix, (np.asarray(labels), np.asarray(predictions)), 1)
    return matrix


def g_mean(labels: np.ndarray, predictions: np.ndarray, num_labels: int) -> float:
    """The geometric mean of the per-class recalls (√(TPR·TNR) for two classes)."""
    matrix = confusion_matrix(labels, predictions, num_labels)
    recalls = np.diag(matrix) / np.maximum(matrix.sum(axis=1), 1)
    return float(np.prod(recalls) ** (1.0 / num_labels))


def classification_report(
    labels: np.ndarray, predictions: np.ndarray, num_labels: int, minority_labels: tuple[int, ...]
) -> dict[str, float | list]:
    """G-mean, accuracy and minority recall/precision/F1 (minority classes pooled)."""
    matrix = confusion_matrix(labels, predictions, num_labels)
    minority = np.isin(np.arange(num_labels), minority_labels)
    true_minority = np.isin(labels, np.flatnonzero(minority))
    predicted_minority = np.isin(predictions, np.flatnonzero(minority))
    hits = np.sum(true_minority & predicted_minority & (labels == predictions))
    recall = hits / max(true_minority.sum(), 1)
    precision = hits / max(predicted_minority.sum(), 1)
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {
        "g_mean": g_mean(labels, predictions, num_labels),
        "accuracy": float(np.mean(labels == predictions)),
        "minority_recall": float(recall),
        "minority_precision": float(precision),
        "minority_f1": float(f1),
        "confusion_matrix": matrix.tolist(),
    }
