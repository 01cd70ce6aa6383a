"""Hierarchical (multilevel) models: eight schools, radon."""
