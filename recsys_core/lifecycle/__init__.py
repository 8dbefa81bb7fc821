"""The model's life after training: MLflow logging and registration, promotion, batch scoring.

Depends on ``recsys_core.model`` (the artefact it registers and loads), never the other way.
"""
