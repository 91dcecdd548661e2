"""A seeded generator of synthetic BRP, payroll, uitlener-register and hire files."""

from sigex.partners.synthetic.generator import GenerationSummary, generate_dataset
from sigex.partners.synthetic.rates import DEFAULT_RATES, PatternRates

__all__ = ["DEFAULT_RATES", "GenerationSummary", "PatternRates", "generate_dataset"]
