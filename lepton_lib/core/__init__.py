"""What every chapter uses: devices and seeds, argument checks, the plot style and diagrams, and the glue
between computed numbers and the book's prose.
"""
from lepton_lib.core.glue import TOLERANCE_KEY, glue_number, glue_value, rounded
from lepton_lib.core.checks import (
    check_tensor,
    check_positive_int,
    check_non_negative_int,
    check_int_in_range,
    check_positive_number,
    check_non_negative_number,
    check_fraction,
)
from lepton_lib.core.files import atomic_write_bytes, fsync_directory, sha256_of
from lepton_lib.core.plotting import (
    PALETTE,
    use_book_style,
    flowchart,
    module_flowchart,
    mermaid_markdown,
    show_mermaid,
    plot_series,
)
from lepton_lib.core.provenance import machine_info, command_line, provenance
from lepton_lib.core.runtime import get_device, set_seed, make_reproducible, distributed_rank_and_world

__all__ = [
    "TOLERANCE_KEY",
    "glue_number",
    "glue_value",
    "rounded",
    "check_tensor",
    "check_positive_int",
    "check_non_negative_int",
    "check_int_in_range",
    "check_positive_number",
    "check_non_negative_number",
    "check_fraction",
    "atomic_write_bytes",
    "fsync_directory",
    "sha256_of",
    "PALETTE",
    "use_book_style",
    "flowchart",
    "module_flowchart",
    "mermaid_markdown",
    "show_mermaid",
    "plot_series",
    "machine_info",
    "command_line",
    "provenance",
    "get_device",
    "set_seed",
    "make_reproducible",
    "distributed_rank_and_world",
]
