"""Model evaluation: metrics, calibration, robustness, promotion gates, plots and reports."""
