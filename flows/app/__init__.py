"""The application around the flows: the `recsys` CLI, serving, deployment and environment.

Not flows themselves; kept under ``flows/`` because the product card fixes the top level.
"""
