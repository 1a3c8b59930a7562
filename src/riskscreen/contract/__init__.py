"""The data contract: what an intake and an outcome record are, and what the model may read.

The one declaration of every field (schema), reading and validating a municipality's tables
against it (data), the censoring-aware label (labels, censoring) and the feature encoding
(features). Imports only `riskscreen.settings`/`logs` and libraries; never model, explain,
synth, audit, reports, registry, jobs, cli or service.
"""
