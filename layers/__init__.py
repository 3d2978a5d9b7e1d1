"""Workspace helper modules ("layers") shared by the demo calculations.

Calculations import them as ``from layers.stats import mean``; btbuild hashes every layer a
calculation imports, so a change here re-runs exactly the calculations that use it. Layers
import only the standard library (and each other): results must be deterministic and light.

* :mod:`layers.stats` — means, deviations, percentiles, safe division, rounding;
* :mod:`layers.returns` — simple/log/cumulative returns;
* :mod:`layers.market` — reading root data through a context (skipping days without data),
  valuing portfolios;
* :mod:`layers.risk` — volatility, drawdown, RSI, Sharpe/Sortino, beta/alpha, VaR;
* :mod:`layers.gbm` — barrier hit probability (closed form) and a seeded GBM simulator;
* :mod:`layers.geometry` — convex hull (Andrew's monotone chain) and efficient frontier;
* :mod:`layers.psychometrics` — revenge trading and disposition skew;
* :mod:`layers.attribution` — luck (market) versus skill (alpha);
* :mod:`layers.profiling` — the smart-money score combining them.
"""
