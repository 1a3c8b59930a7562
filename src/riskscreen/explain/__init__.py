"""Exact, additive explanations: TreeSHAP from per-leaf tables (treeshap, built from LightGBM's
dump by tree_dump and computed by the numba kernels in treeshap_kernels), the model's own
single-row score (single_row), and the grouping of contributions into the fields a case manager
knows, with reasons in Swedish and English (reasons).

Sits below model/ because a bundle carries its explainer. May import contract; never model,
synth, audit, reports, registry, jobs, cli or service.
"""
