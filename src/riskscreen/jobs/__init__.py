"""Use cases that cross domains: scoring and deciding a case with its audit record (casework),
a whole training run with its report and registration (training), and the tables the notebooks
show (explore).

May import reports, registry and everything below them; never cli or service.
"""
