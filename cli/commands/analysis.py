"""Commands that check an export: ``verify`` (the files as the printed object), ``tolerance`` (fabrication
errors, Monte-Carlo) and ``crosscheck`` (the mask models against a rigorous solver)."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from quaton_fab.units import format_length

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
    probe: Annotated[bool, typer.Option(help="Convergence probe: the design as printed at twice the reference sampling and half its slices, on --probe-samples test samples; 'not converged' (exit 1) when it differs by more than the tolerance.")] = True,
    probe_samples: Annotated[int, typer.Option("--probe-samples", min=1, help="Test samples of the convergence probe (the design's test split drawn at that size).")] = 500,
    device: Annotated[str, typer.Option(help="auto, cpu or cuda.")] = "auto",
) -> None:
    """Read the exported files back and re-simulate them as the printed object; pass only within the tolerance
    and when the reference is converged (a finer simulation on a subset agrees)."""
    from quaton_fab.design import Design
    from quaton_fab.fab.sheet import record_verification
    from quaton_fab.analysis.verify import verify_export

    from ..progress import eval_progress

    design = Design.load(design_dir)
    progress, update = eval_progress(console, "re-simulating the printed object")
    probe_task = None

    def probe_update(done: int, total: int) -> None:
        nonlocal probe_task
        if probe_task is None:  # shown once the probe starts
            probe_task = progress.add_task("convergence probe (finer sampling and slicing)", total=total, info="")
        progress.update(probe_task, completed=done, total=total)

    with progress:
        report = verify_export(design, export_dir, samples=test_samples, device=device, progress=update,
                               tolerance=tolerance, oversample=oversample,
                               max_slice_m=length(max_slice, "--max-slice"),
                               probe_samples=probe_samples if probe else None, probe_progress=probe_update)
    table = Table(title=f"verify {q(export_dir)}: files read back and simulated as the printed object")
    for col in ("file", "read back", "level match", "max height error", report.metric_name, "gap to design"):
        table.add_column(col, justify="right")
    for row in report.rows:
        table.add_row(q(row.file), q(row.reader), f"{row.level_match:.4%}", format_length(row.max_height_error_m),
                      f"{row.metric:.4f}", f"{row.metric - report.design_metric:+.4f}")
    console.print(table)
    summary = Table(show_header=False, box=None)
    summary.add_row("design (training model)", f"{report.design_metric:.4f}", q(report.design_fidelity))
    summary.add_row("design as printed object", f"{report.reference_design_metric:.4f}", q(report.reference_fidelity))
    summary.add_row("files as printed object (worst)", f"{report.files_metric:.4f}", "")
    summary.add_row("gap (a) files vs design", f"{report.gap_files:+.4f}", "export: material, base, z-step, files")
    summary.add_row("gap (b) design vs reference", f"{report.gap_model:+.4f}",
                    "reference − training model: sampling and relief")
    summary.add_row("total gap", f"{report.total_gap:+.4f}", f"tolerance −{report.tolerance:.4f}")
    if report.probe is not None:
        p = report.probe
        summary.add_row(f"convergence probe ({p.samples} samples)", f"{p.difference:+.4f}",
                        q(f"{p.reference_metric:.4f} at s={p.reference['oversample']} → {p.probe_metric:.4f} at "
                          f"s={p.probe['oversample']}, slices ≤ {p.probe['max_slice_m'] * 1e9:.4g} nm"
                          if p.probe["max_slice_m"] else f"{p.reference_metric:.4f} → {p.probe_metric:.4f} at "
                          f"s={p.probe['oversample']}"))
    console.print(summary)
    console.print(f"{report.metric_name} on {report.samples} test samples.")
    if test_samples is None:
        try:
            record_verification(export_dir, report.to_dict())
            console.print(f"[dim]recorded in {q(export_dir)}/fab_sheet.json and fab_sheet.md[/]")
        except OSError as exc:  # a read-only export still gets its verdict; only the record is skipped
            err_console.print(f"[yellow]warning:[/] not recorded in the fab sheet: {q(os_error_text(exc))}",
                              soft_wrap=True)
    if report.converged is False:
        err_console.print("[red]not converged:[/] " + q(report.probe.summary()) + ": the reference cannot be trusted "
                          "to the tolerance; measure at a finer --oversample/--max-slice", highlight=False)
    if not report.ok:
        failures = [f for f in report.failures() if not f.startswith("not converged")]
        if not failures:
            raise typer.Exit(1)
        fail("verification failed: " + "; ".join(failures), 1)
    console.print("[green]verified:[/] the exported files, simulated as the printed object, reproduce the design "
                  f"within {report.tolerance:.4f} {report.metric_name}.")


def _magnitudes(name: str, text: Optional[str], pitch_m: float) -> list[float]:
    """A comma-separated magnitude list of one error (default: its literature default × 0.5, 1, 2)."""
    from quaton_fab.optics.perturbation import ERRORS, ToleranceError, parse_magnitude

    if text is None:
        return [ERRORS[name].default * f for f in (0.5, 1.0, 2.0)]
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
    import json

    from quaton_fab.design import Design
    from quaton_fab.fileio import atomic_write_bytes
    from quaton_fab.optics.perturbation import ERRORS
    from quaton_fab.analysis.tolerance import run_tolerance, tolerance_markdown, tolerance_sheet_entry
    from quaton_fab.analysis.tolerance_figure import plot_tolerance
    from quaton_fab.simulate import design_fidelity, reference_fidelity

    from ..progress import eval_progress

    design = Design.load(design_dir)
    names = list(ERRORS) if errors is None else [e.strip() for e in errors.split(",") if e.strip()]
    for name in names:
        if name not in ERRORS:
            fail(f"--errors: unknown error {name!r}; use {', '.join(ERRORS)}")
    texts = {"height-scale": height_scale, "height-noise": height_noise, "shift": shift, "rotation": rotation,
             "spacing": spacing, "blur": blur, "index": index}
    sweeps = {name: _magnitudes(name, texts[name], design.geometry.pitch_m) for name in names}
    try:
        factors = [float(f) for f in combined.split(",") if f.strip()]
    except ValueError:
        fail(f"--combined must be comma-separated numbers, got {combined!r}")
    if any(not (f >= 0 and f < 1e3) for f in factors):
        fail(f"--combined factors must be finite numbers >= 0, got {combined!r}")
    if loss is not None and not (0 <= loss <= 1):
        fail(f"--loss must be in [0, 1], got {loss}")
    target = out or Path(design_dir) / "tolerance"
    files = {k: target / f"tolerance.{k}" for k in ("json", "md", "png")}
    if not force:
        clash = next((p for p in files.values() if p.exists()), None)
        if clash is not None:
            fail(f"{clash} already exists; use --force to overwrite it or another --out")
    sheet = None
    if export_dir is not None:  # check the export before minutes of simulation
        from quaton_fab.fab.sheet import read_fab_sheet
        from quaton_fab.analysis.sheet_check import check_sheet

        sheet = read_fab_sheet(export_dir)
        check_sheet(sheet, design, export_dir)
    if oversample is not None and fidelity is not ToleranceFidelity.reference:
        fail("--oversample refines the reference fidelity; drop it or use --fidelity reference")
    fid = (reference_fidelity(design, oversample=oversample) if fidelity is ToleranceFidelity.reference
           else design_fidelity(design))
    if fid.relief is None:
        fail("the design was trained with thin masks; use --fidelity reference (the printed relief)")
    console.print(f"[dim]{fid.label}:[/] {q(fid.describe(design.geometry))}", highlight=False, soft_wrap=True)
    progress, update = eval_progress(console, "tolerance Monte-Carlo (prints simulated)")
    with progress:
        run = run_tolerance(design, sweeps, trials=trials, seed=seed, samples=samples, fidelity=fid,
                            allowed_loss=loss, criterion=criterion.value, combined_factors=factors, device=device,
                            progress=lambda done, total, label: update(done, total))
    result = run.to_dict()
    table = Table(title=f"{q(design_dir)}: {run.metric} under fabrication errors ({run.trials} trials, "
                        f"{run.samples} samples, {run.fidelity} fidelity; nominal {run.nominal:.4f})")
    for col in ("error", "σ", "trials", f"mean {run.metric}", "5th pct", "min", "within loss"):
        table.add_column(col, justify="right")
    for r in run.rows:
        table.add_row(q(r["error"]), f"{r['magnitude']:g} {q(r['unit'])}", str(r["trials"]), f"{r['mean']:.4f}",
                      f"{r['p5']:.4f}", f"{r['min']:.4f}", "[green]yes[/]" if r["within"] else "[red]no[/]")
    console.print(table)
    limits = Table(title=f"acceptance tolerances ({run.criterion} within −{run.allowed_loss:g} {run.metric})")
    for col in ("error", "largest σ within the loss", "source"):
        limits.add_column(col, overflow="fold")
    for lim in run.limits():
        value = lim["max_magnitude"]
        limits.add_row(q(lim["error"]), "[red]< smallest swept[/]" if value is None else f"{value:g} {q(lim['unit'])}",
                       q(lim["source"]))
    console.print(limits)
    import shutil
    import tempfile

    from quaton_fab.fileio import commit_set

    target.mkdir(parents=True, exist_ok=True)  # the three files are staged, then moved in together (or none)
    stage = Path(tempfile.mkdtemp(prefix=".tolerance-", dir=target))
    try:
        staged = {k: stage / p.name for k, p in files.items()}
        atomic_write_bytes(staged["json"], (json.dumps(result, indent=2, allow_nan=False) + "\n").encode())
        atomic_write_bytes(staged["md"], tolerance_markdown(run).encode())
        plot_tolerance(result, staged["png"])
        commit_set([(staged[k], files[k]) for k in files])
    except OSError as exc:  # name the file the user asked for, not its staged twin
        if exc.filename is not None and Path(os.fsdecode(exc.filename)).parent == stage:
            raise OSError(exc.errno, exc.strerror or str(exc), str(target / Path(os.fsdecode(exc.filename)).name)
                          ) from None
        raise
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    for path in files.values():
        console.print(f"  wrote {q(path)}")
    if export_dir is not None:
        from quaton_fab.fab.sheet import record_tolerance

        record_tolerance(export_dir, tolerance_sheet_entry(run))
        console.print(f"[dim]acceptance tolerances recorded in {q(export_dir)}/fab_sheet.json and fab_sheet.md[/]")
    console.print(f"{run.time_s:.0f} s for {sum(r['trials'] for r in run.rows) + 1} simulated prints.")


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
) -> None:
    """Compare the mask models with a rigorous solver (RCWA) on periodic patches of the exported relief."""
    import shlex

    from quaton_fab.analysis.crosscheck import crosscheck_export, sheet_entry
    from quaton_fab.analysis.crosscheck_figure import plot_crosscheck
    from quaton_fab.design import Design
    from quaton_fab.fab.sheet import record_crosscheck

    from ..progress import eval_progress

    design = Design.load(design_dir)
    progress, update = eval_progress(console, "rigorous solves (RCWA)")
    with progress:
        result = crosscheck_export(design, export_dir, patches=patches, patch_pixels=patch_pixels,
                                   harmonics=harmonics, seed=seed, device=device, progress=update)
    table = Table(title=f"crosscheck {q(export_dir)}: scalar models vs {q(result.solver)}")
    for col in ("model", "polarisation", "L1 mean / worst", "complex mean / worst"):
        table.add_column(col, justify="right")
    for r in result.rows:
        table.add_row(q(r["model"]), r["polarisation"], f"{r['l1_mean']:.3f} / {r['l1_worst']:.3f}",
                      f"{r['complex_mean']:.3f} / {r['complex_worst']:.3f}")
    console.print(table)
    console.print(q(result.note()))
    command = "quaton-fab crosscheck " + " ".join(shlex.quote(a) for a in sys.argv[2:])
    entry = sheet_entry(result, command)
    figure = plot_crosscheck(entry, result.convergence, Path(export_dir) / entry["figure"])
    record_crosscheck(export_dir, entry)
    console.print(f"[dim]wrote {q(figure)}; recorded in {q(export_dir)}/fab_sheet.json and fab_sheet.md[/]")
