"""Ordinary differential equation models of posteriordb: Lotka-Volterra predator-prey dynamics and a
one-compartment pharmacokinetic model, their states solved numerically (``ode.solvers``)."""
