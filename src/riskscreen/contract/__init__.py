"""The data contract: what an intake and an outcome record are, and what the model may read.

The one declaration of every field (schema, with value_labels for the words shown and identity
for the identity-number guard), the API's record (record), reading and validating tables
(read, cells, data, cross, problems), a municipality's own export read through a mapping
(mapping_spec, yaml_lines, mapping_checks, mapping, lookup, pseudonym, transform, export,
coverage, draft), the censoring-aware label (labels, censoring) and the feature encoding
(features). Imports only `riskscreen.settings`/`logs` and libraries; never model, explain,
synth, audit, reports, registry, jobs, cli or service.
"""
