"""Subcommands that live in their own module.

Each module defines ``HELP`` (one line), ``add_arguments(parser)`` and
``run(args, out, err) -> int``; :data:`quantspec.cli.COMMAND_MODULES` lists them. Modules import
heavy libraries (numpy, onnx, onnxruntime) inside ``run`` so ``quantspec lint`` stays fast to start.
"""
