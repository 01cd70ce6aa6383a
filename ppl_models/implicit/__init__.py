"""Implicit models: data as a transformation of noise, sampled but with no likelihood."""
