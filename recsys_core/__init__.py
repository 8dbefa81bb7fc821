"""Hybrid recommender core: data, embeddings, CF, deep models, fusion, evaluation, model."""
