"""Case studies (book/cases): the pipelines behind each case, group fairness rates and calibration.
"""
from lepton_lib.cases.calibration import brier_score, calibration_curve, expected_calibration_error
from lepton_lib.cases.fairness import GroupRates, group_rates
from lepton_lib.cases.pipelines import (
    tabular_models,
    credit_experiment,
    sensitivity_threshold,
    diagnosis_experiment,
    recommendation_experiment,
    sentiment_experiment,
)

__all__ = [
    "brier_score",
    "calibration_curve",
    "expected_calibration_error",
    "GroupRates",
    "group_rates",
    "tabular_models",
    "credit_experiment",
    "sensitivity_threshold",
    "diagnosis_experiment",
    "recommendation_experiment",
    "sentiment_experiment",
]
