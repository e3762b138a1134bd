"""What every chapter uses: the glue between computed numbers and the book's prose."""
from lepton_lib.core.glue import TOLERANCE_KEY, glue_number, glue_value, rounded

__all__ = ["TOLERANCE_KEY", "glue_number", "glue_value", "rounded"]
