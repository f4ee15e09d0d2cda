"""Graph transforms the vendor tools run before quantizing, on ONNX models, in numpy.

One entry point, :func:`apply_transforms`, runs what a profile or plan asks for in a fixed order::

    fold_batchnorm -> relu6_to_relu -> cle -> bias_correction

* ``fold_batchnorm``: BatchNormalization into the Conv/ConvTranspose/Gemm before it (or the
  Conv/Gemm after it where that is exact); AMCT ``do_fusion``/``skip_fusion_layers``.
* ``relu6_to_relu``: Clip(0, 6) -> Relu; Vitis ``convert_relu6_to_relu``.
* ``cle``: cross-layer equalization + high-bias absorption; QNN ``--algorithms cle``, Vitis
  ``include_cle``.
* ``bias_correction``: empirical bias correction on calibration data; Vitis
  ``include_bias_corr``.

Example:
    >>> from quantspec.transforms import apply_transforms                 # doctest: +SKIP
    >>> model, report = apply_transforms(model, plan.transforms)         # doctest: +SKIP
    >>> model, report = apply_transforms(model, {"cle": True, "fold_batchnorm": True},
    ...                                  data={"x": samples}, plan=plan) # doctest: +SKIP

The input model is never modified; the result is a new ``onnx.ModelProto``. What each transform
did, and what it refused and why, is in the :class:`TransformReport` (``docs/transforms.md``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .report import W_BC_NO_DATA, W_NOT_IMPLEMENTED, W_SKIP_UNKNOWN, TransformReport
from .spec import ORDER, TransformOptions, normalize, restrict

if TYPE_CHECKING:
    import onnx

__all__ = ["ORDER", "TransformOptions", "TransformReport", "apply_transforms", "normalize",
           "restrict"]


def apply_transforms(model: onnx.ModelProto, transforms_spec: Any = None, *, data: Any = None,
                     plan: Any = None, model_name: str = "",
                     weight_quantizer: Any = None) -> tuple[onnx.ModelProto, TransformReport]:
    """Run the transforms ``transforms_spec`` asks for on a copy of ``model``.

    Args:
        model: the float model (not modified).
        transforms_spec: what to run: ``Plan.transforms`` / ``Profile.transforms`` / a Plan or
            Profile / ``{name: on|off|options}`` / names (see :mod:`quantspec.transforms.spec`).
            None means ``plan.transforms`` when a plan is given.
        data: calibration data for ``bias_correction``: ``{input name: array}`` with samples on
            axis 0, or an iterable of ``{input name: batch}`` feeds.
        plan: the compiled plan whose weight encodings bias correction simulates (a ``Plan`` or
            its JSON dict); without one, weights are int8 symmetric per-channel.
        model_name: shown in the report.
        weight_quantizer: optional ``(weight name, array) -> fake-quantized array or None``
            that bias correction uses instead of the plan (e.g. calibration's own vendor
            semantics); None from it keeps that layer float.

    Returns:
        ``(new model, report)``.
    """
    import onnx

    from .bias_correction import correct_biases
    from .bn_fold import fold_batchnorms
    from .cle import equalize
    from .context import Context
    from .editor import ModelEditor
    from .relu6 import convert_relu6

    if transforms_spec is None and plan is not None:
        transforms_spec = plan
    requested = normalize(transforms_spec)
    out = onnx.ModelProto()
    out.CopyFrom(model)
    report = TransformReport(model=model_name,
                             requested={k: v.to_json() for k, v in requested.items()})
    ctx = Context(ModelEditor(out), report)
    _check_skip_lists(ctx, requested)
    for name, opts in requested.items():
        if name not in ORDER and opts.enabled:
            report.refuse(name, W_NOT_IMPLEMENTED, f"'{name}' is not run by quantspec's "
                          "transforms; the model is passed on without it",
                          hint="run it in the vendor tool")
    for name in ORDER:
        step = requested.get(name)
        if step is None or not step.enabled:
            continue
        opts = step
        if name == "fold_batchnorm":
            fold_batchnorms(ctx, opts)
        elif name == "relu6_to_relu":
            convert_relu6(ctx, opts)
        elif name == "cle":
            equalize(ctx, opts, requested.get("fold_batchnorm"))
        else:
            if data is None:
                report.refuse(name, W_BC_NO_DATA, "bias correction needs calibration data; "
                              "skipped", hint="pass data= (CLI: --data FILE.npz)")
                continue
            correct_biases(ctx, opts, data, plan, weight_quantizer)
        report.ran.append(name)
    return ctx.editor.model, report


def _check_skip_lists(ctx: Any, requested: dict[str, TransformOptions]) -> None:
    """W602 for skip-list entries that name no node (AMCT errors on those, spec 001 / vitis_amct
    2.4; here the run goes on)."""
    import fnmatch

    from .editor import display_name

    names = [display_name(n) for n in ctx.editor.nodes()]
    for opts in requested.values():
        if not opts.enabled:
            continue
        for pat in opts.skip:
            if pat not in names and not fnmatch.filter(names, pat):
                ctx.report.refuse(opts.name, W_SKIP_UNKNOWN, f"skip-list entry '{pat}' matches "
                                  "no node of the model", [], "check the layer name")
