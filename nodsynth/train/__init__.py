"""Trainers run by ``nodsynth train <name>``: one module per trainer (``controlnet``, ``hrldm``).

Each module exposes ``add_arguments(parser)`` and ``run(args) -> int`` and is imported only when
its sub-command runs, so that ``nodsynth --help`` does not import torch.
"""
