"""The model: training configuration, the fitted bundle (trees, calibration, thresholds,
explainer), fitting, evaluation and gates, scoring with exact explanations, and the MLflow pyfunc
wrapper. Pure stage functions: no files, databases or MLflow here except the pyfunc's loading.

May import explain, synth, contract; never audit, reports, registry, jobs, cli or service.
"""
