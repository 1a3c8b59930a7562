"""riskscreen: explainable, audited decision support for early intensified settlement support."""

__version__ = "0.1.0"
