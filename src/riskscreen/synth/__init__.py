"""The synthetic cohort generator, calibrated to published Swedish figures, with its known truth
(the oracle): configuration (config, synth.yaml), traits, outcomes, the data card, and the
generator that puts them together (generate).

Sits below model/ because a training run may generate its cohort. May import contract; never
explain, model, audit, reports, registry, jobs, cli or service.
"""
