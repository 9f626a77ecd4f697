"""Helpers shared by the test modules (conftest.py files hold fixtures only; test modules import no other
test module)."""
