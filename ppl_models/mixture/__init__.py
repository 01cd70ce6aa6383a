"""Finite mixtures of posteriordb, their discrete assignments marginalized."""
