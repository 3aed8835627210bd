"""Test producers that run in a virtualenv of their own (older openedx-events releases)."""
