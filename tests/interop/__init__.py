"""Helpers of the interoperability tests with upstream lakota 0.7.1 (see test_interop.py)."""
