"""Image classification with MobileNetV1 (Tables 4-10): the model built from a checkpoint's meta
and the predictor behind ``mbv1 classify``. Training is ``mbv1.tasks.classification``."""

from mbv1.classification.model import build_model, labels_of
from mbv1.classification.predictor import Classifier, Prediction

__all__ = ["Classifier", "Prediction", "build_model", "labels_of"]
