"""Helpers the tests import: plain functions, classes and constants (fixtures stay in
conftest.py files). Test modules import from here, never from other test modules."""
