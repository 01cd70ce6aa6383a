"""Conjugate models on real data: exact posteriors for testing approximate inference."""
