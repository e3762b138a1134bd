"""What every chapter uses: argument checks, devices and seeds, atomic files and checksums, the provenance of
stored results, the plot style and diagrams, and the glue between computed numbers and the prose.
"""
from lepton_lib.core import checks, cli, files, glue, plotting, records, runtime, widgets

__all__ = [  # every public name of the modules above
    *checks.__all__,
    *cli.__all__,
    *files.__all__,
    *glue.__all__,
    *plotting.__all__,
    *records.__all__,
    *runtime.__all__,
    *widgets.__all__,
]

from lepton_lib.core.checks import *  # noqa: E402, F403
from lepton_lib.core.cli import *  # noqa: E402, F403
from lepton_lib.core.files import *  # noqa: E402, F403
from lepton_lib.core.glue import *  # noqa: E402, F403
from lepton_lib.core.plotting import *  # noqa: E402, F403
from lepton_lib.core.records import *  # noqa: E402, F403
from lepton_lib.core.runtime import *  # noqa: E402, F403
from lepton_lib.core.widgets import *  # noqa: E402, F403
