"""Scenario scripts run inside the Monado root (scripts/monado-root.sh) by tests/test_openxr_monado.py."""
