"""Packages for setuptools; everything else is in setup.cfg.

The project templates live in the top-level ``templates/`` folder and ship
inside the package as ``ragrev.templates`` (``package_dir`` in setup.cfg);
``packages = find:`` cannot name a package kept outside ``ragrev/``, so the
list is built here.
"""
from setuptools import find_packages, setup

setup(packages=find_packages(include=["ragrev", "ragrev.*"]) + ["ragrev.templates"])
