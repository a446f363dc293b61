"""Commands that check an export: ``verify`` (the files as the printed object), ``tolerance`` (fabrication
errors, Monte-Carlo) and ``crosscheck`` (the mask models against a rigorous solver)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from ..choices import Criterion, ToleranceFidelity
from ..common import console, err_console, fail, length, os_error_text, q, user_errors


@user_errors
def verify(
    design_dir: Annotated[Path, typer.Argument(help="A design directory.")],
    export_dir: Annotated[Path, typer.Argument(help="The export directory written by `quaton-fab export`.")],
    test_samples: Annotated[Optional[int], typer.Option("--test-samples", min=1, help="Fewer test samples for a quick check (the result is then not recorded in the fab sheet).")] = None,
    tolerance: Annotated[Optional[float], typer.Option(help="Largest accepted loss of the metric, as a fraction (default 0.005 accuracy = 0.5 points, 0.01 SSIM).", min=0.0)] = None,
    oversample: Annotated[Optional[int], typer.Option(help="Finer reference sampling than the rule.", min=1)] = None,
    max_slice: Annotated[Optional[str], typer.Option("--max-slice", help="Finer reference slicing of the relief, e.g. 50nm.")] = None,
    probe: Annotated[bool, typer.Option(help="Convergence probe: the design as printed at twice the reference sampling and half its slices, on --probe-samples test samples (those nearest a changed decision and a random draw from the rest), estimating the change over all judged samples with a 95 % interval; 'not converged' (exit 1) when it lies beyond the tolerance, 'undecided' (said, exit 0) when it straddles it.")] = True,
    probe_samples: Annotated[Optional[int], typer.Option("--probe-samples", min=1, help="Test samples the probe simulates at its finer fidelity, about 16× the reference's cost each (default 1500; the number of judged samples or more: all of them, exactly).")] = None,
    device: Annotated[str, typer.Option(help="auto, cpu or cuda.")] = "auto",
) -> None:
    """Read the exported files back and re-simulate them as the printed object; pass only within the tolerance
    and when the reference is converged (a finer simulation on a subset agrees)."""
    from quaton_fab.analysis.convergence import DEFAULT_PROBE_SAMPLES
    from quaton_fab.analysis.record import verify_and_record
    from quaton_fab.design import Design

    from ..render_analysis import AnalysisRenderer, show_verify

    design = Design.load(design_dir)
    outcome = verify_and_record(design, export_dir, samples=test_samples, device=device, tolerance=tolerance,
                                oversample=oversample, max_slice_m=length(max_slice, "--max-slice"),
                                probe_samples=(probe_samples or DEFAULT_PROBE_SAMPLES) if probe else None,
                                hooks=AnalysisRenderer(show=lambda report: show_verify(export_dir, report)))
    report = outcome.report
    if outcome.recorded:
        console.print(f"[dim]recorded in {q(export_dir)}/fab_sheet.json and fab_sheet.md[/]")
    elif outcome.record_error is not None:  # a read-only export still gets its verdict; only the record is skipped
        err_console.print(f"[yellow]warning:[/] not recorded in the fab sheet: {q(os_error_text(outcome.record_error))}",
                          soft_wrap=True)
    if report.converged is False:
        err_console.print("[red]not converged:[/] " + q(report.probe.summary()) + ": the reference cannot be trusted "
                          "to the tolerance; measure at a finer --oversample/--max-slice", highlight=False)
    elif report.probe is not None and report.probe.verdict == "undecided":
        err_console.print("[yellow]convergence undecided:[/] " + q(report.probe.summary()), highlight=False)
    if not report.ok:
        failures = [f for f in report.failures() if not f.startswith("not converged")]
        if not failures:
            raise typer.Exit(1)
        fail("verification failed: " + "; ".join(failures), 1)
    undecided = report.probe is not None and report.probe.verdict == "undecided"
    console.print("[green]verified:[/] the exported files, simulated as the printed object, reproduce the design "
                  f"within {report.tolerance:.4f} {report.metric_name}"
                  + (" (the reference's convergence is undecided: see above)." if undecided else "."))


def _magnitudes(name: str, text: str, pitch_m: float) -> list[float]:
    """A comma-separated magnitude list of one error (field units)."""
    from quaton_fab.optics.perturbation import ToleranceError, parse_magnitude

    parts = [p for p in text.split(",") if p.strip()]
    if not parts:
        fail(f"--{name} needs at least one magnitude, got {text!r}")
    try:
        return [parse_magnitude(name, p, pitch_m=pitch_m) for p in parts]
    except ToleranceError as exc:
        fail(f"--{name}: {exc}")


@user_errors
def tolerance(
    design_dir: Annotated[Path, typer.Argument(help="A design directory.")],
    export_dir: Annotated[Optional[Path], typer.Argument(help="Optional export directory: the acceptance tolerances are written into its fab sheet.")] = None,
    trials: Annotated[int, typer.Option(help="Prints drawn per magnitude (the deterministic blur is simulated once).", min=1)] = 4,
    seed: Annotated[int, typer.Option(help="Monte-Carlo seed.")] = 0,
    samples: Annotated[int, typer.Option(help="Test samples simulated per print.", min=1)] = 300,
    loss: Annotated[Optional[float], typer.Option(help="Allowed loss of the metric (default 0.01 accuracy = 1 point, 0.02 SSIM).")] = None,
    criterion: Annotated[Criterion, typer.Option(help="p5: the 5th percentile of the trials must stay within the loss; mean: their mean.")] = Criterion.p5,
    fidelity: Annotated[ToleranceFidelity, typer.Option(help="reference: the printed object (sampling rule, converged relief slicing; default); design: the design's own training model (faster).")] = ToleranceFidelity.reference,
    errors: Annotated[Optional[str], typer.Option(help="Errors to sweep, comma-separated (default all): height-scale, height-noise, shift, rotation, spacing, blur, index.")] = None,
    height_scale: Annotated[Optional[str], typer.Option("--height-scale", help="σ list of the global height scale, e.g. 1%,3%,5% (default 1.5%,3%,6%).")] = None,
    height_noise: Annotated[Optional[str], typer.Option("--height-noise", help="σ list of per-pixel height noise, e.g. 10nm,20nm,40nm.")] = None,
    shift: Annotated[Optional[str], typer.Option(help="σ list of each mask's lateral shift (x and y), e.g. 0.25um,0.5um,1um or 1px.")] = None,
    rotation: Annotated[Optional[str], typer.Option(help="σ list of each mask's rotation in degrees, e.g. 0.25,0.5,1.")] = None,
    spacing: Annotated[Optional[str], typer.Option(help="σ list of each gap, relative, e.g. 1%,2%,4%.")] = None,
    blur: Annotated[Optional[str], typer.Option(help="Pixel rounding (Gaussian σ) list, e.g. 85nm,170nm,340nm.")] = None,
    index: Annotated[Optional[str], typer.Option(help="σ list of the material index error, e.g. 0.0025,0.005,0.01.")] = None,
    combined: Annotated[str, typer.Option(help="Also every error at once at its default × these factors ('' for none).")] = "0.5,1,2",
    oversample: Annotated[Optional[int], typer.Option(help="Finer reference sampling than the rule (sub-pixel shifts and rounding are resolved on a finer grid).", min=1)] = None,
    out: Annotated[Optional[Path], typer.Option(help="Folder for tolerance.json/.md/.png (default DESIGN_DIR/tolerance).")] = None,
    force: Annotated[bool, typer.Option(help="Overwrite existing result files.")] = False,
    device: Annotated[str, typer.Option(help="auto, cpu or cuda.")] = "auto",
) -> None:
    """Monte-Carlo re-simulation of the printed object under fabrication errors; the largest error of each kind
    that keeps the metric within the allowed loss (written into the fab sheet with EXPORT_DIR)."""
    from quaton_fab.analysis.tolerance_study import select_errors, tolerance_study
    from quaton_fab.design import Design

    from ..render_analysis import AnalysisRenderer, show_tolerance

    design = Design.load(design_dir)
    names = select_errors(None if errors is None else errors.split(","))
    texts = {"height-scale": height_scale, "height-noise": height_noise, "shift": shift, "rotation": rotation,
             "spacing": spacing, "blur": blur, "index": index}
    sweeps = {name: _magnitudes(name, texts[name], design.geometry.pitch_m) for name in names
              if texts[name] is not None}
    try:
        factors = [float(f) for f in combined.split(",") if f.strip()]
    except ValueError:
        fail(f"--combined must be comma-separated numbers, got {combined!r}")
    if any(not (f >= 0 and f < 1e3) for f in factors):
        fail(f"--combined factors must be finite numbers >= 0, got {combined!r}")
    if loss is not None and not (0 <= loss <= 1):
        fail(f"--loss must be in [0, 1], got {loss}")
    study = tolerance_study(design_dir, design=design, export_dir=export_dir, errors=names, magnitudes=sweeps,
                            trials=trials, seed=seed, samples=samples, loss=loss, criterion=criterion.value,
                            fidelity=fidelity.value, combined_factors=factors, oversample=oversample, out=out,
                            force=force, device=device,
                            hooks=AnalysisRenderer(show=lambda run: show_tolerance(design_dir, run)))
    if study.recorded:
        console.print(f"[dim]acceptance tolerances recorded in {q(export_dir)}/fab_sheet.json and fab_sheet.md[/]")
    console.print(f"{study.run.time_s:.0f} s for {study.prints} simulated prints.")


# --------------------------------------------------------------------------------------------------- crosscheck
@user_errors
def crosscheck(
    design_dir: Annotated[Path, typer.Argument(help="A design directory.")],
    export_dir: Annotated[Path, typer.Argument(help="The export directory written by `quaton-fab export`.")],
    patches: Annotated[int, typer.Option(help="Periodic patches cut from the exported relief.")] = 4,
    patch_pixels: Annotated[int, typer.Option("--patch-pixels", help="Relief pixels per side of a patch.")] = 4,
    harmonics: Annotated[Optional[int], typer.Option(help="Fourier harmonics M of the rigorous solver ((2M+1)² kept; default: largest propagating order + 2, at least 2 per pixel).")] = None,
    seed: Annotated[int, typer.Option(help="Seed of the patch positions.")] = 0,
    device: Annotated[str, typer.Option(help="auto, cpu or cuda (the rigorous solver runs there).")] = "auto",
    endless_base: Annotated[bool, typer.Option("--endless-base", help="Light the relief from inside an endless base (no reflections at the base's bottom face): the models' own error, as the validity map measures it. Default: the free-standing plate as printed.")] = False,
) -> None:
    """Compare the mask models with a rigorous solver (RCWA) on periodic patches of the exported relief."""
    import shlex

    from quaton_fab.analysis.record import crosscheck_and_record
    from quaton_fab.design import Design

    from ..render_analysis import AnalysisRenderer, show_crosscheck

    design = Design.load(design_dir)
    command = "quaton-fab crosscheck " + " ".join(shlex.quote(a) for a in sys.argv[2:])
    outcome = crosscheck_and_record(design, export_dir, patches=patches, patch_pixels=patch_pixels,
                                    harmonics=harmonics, seed=seed, device=device, endless_base=endless_base,
                                    command=command,
                                    hooks=AnalysisRenderer(show=lambda result: show_crosscheck(export_dir, result)))
    console.print(f"[dim]wrote {q(outcome.figure)}; recorded in {q(export_dir)}/fab_sheet.json and fab_sheet.md[/]")
