# Metadata lives in setup.cfg; this file enables `pip install -e .` with
# older pip/setuptools.
from setuptools import setup

setup()
