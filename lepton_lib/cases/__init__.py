"""Case studies (book/cases): the pipelines behind each case, group fairness rates, calibration and route
optimisation.
"""
from lepton_lib.cases import calibration, explanations, fairness, intents, pipelines, routing

__all__ = [  # every public name of the modules above
    *calibration.__all__,
    *explanations.__all__,
    *fairness.__all__,
    *intents.__all__,
    *pipelines.__all__,
    *routing.__all__,
]

from lepton_lib.cases.calibration import *  # noqa: E402, F403
from lepton_lib.cases.explanations import *  # noqa: E402, F403
from lepton_lib.cases.fairness import *  # noqa: E402, F403
from lepton_lib.cases.intents import *  # noqa: E402, F403
from lepton_lib.cases.pipelines import *  # noqa: E402, F403
from lepton_lib.cases.routing import *  # noqa: E402, F403
