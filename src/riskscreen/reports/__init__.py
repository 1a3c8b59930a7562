"""The model report auditors read: tables, figures and the HTML template that renders them.

May import model and everything below it; never registry, jobs, cli or service.
"""
