"""Time-series models of posteriordb: autoregressive, ARMA and GARCH."""
