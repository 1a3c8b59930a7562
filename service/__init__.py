"""The FastAPI service of riskscreen; the logic it calls lives in the riskscreen package."""
