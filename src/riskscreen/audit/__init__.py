"""The audit trail and the service's own state: the hash-chained log, its group-commit writer,
the database plumbing they share (db), API keys and the scoring stop switch.

Independent of the data contract: records arrive as plain JSON-ready payloads. Imports only
`riskscreen.settings`/`logs` and libraries; never contract, model, explain, synth, reports,
registry, jobs, cli or service.
"""
