"""Package list for setuptools: every ``nodsynth`` package plus the top-level ``Resources/``
folder installed as ``nodsynth/Resources`` (metadata lives in pyproject.toml)."""
from setuptools import find_packages, setup

setup(
    packages=find_packages(include=["nodsynth", "nodsynth.*"]) + ["nodsynth.Resources"],
    package_dir={"nodsynth.Resources": "Resources"},
)
