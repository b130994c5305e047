"""The run's CSV tables and its self-contained ``report.html``."""

from __future__ import annotations

import base64
import html
import re
from pathlib import Path

from ..utils._io import atomic_path, atomic_write_text

__all__ = ["write_csvs", "write_report"]

_CSS = """
body { font-family: system-ui, sans-serif; max-width: 72rem; margin: 2rem auto; padding: 0 1rem;
       line-height: 1.45; color: #222; }
table { border-collapse: collapse; margin: 1rem 0; font-size: 0.85rem; }
th, td { border: 1px solid #ccc; padding: 0.25rem 0.5rem; }
th { background: #f3f3f3; }
img { max-width: 100%; border: 1px solid #eee; margin: 0.5rem 0; }
code { background: #f5f5f5; padding: 0 0.2rem; }
h2 { border-bottom: 1px solid #ddd; padding-bottom: 0.2rem; margin-top: 2.5rem; }
details { margin: 0.5rem 0; }
summary { cursor: pointer; color: #444; }
nav.toc { background: #fafafa; border: 1px solid #eee; padding: 0.5rem 1rem; }
"""

#: tables with more body rows than this are folded (``<details>``), with their size shown
FOLD_ROWS = 12


def _frame_csv(run_dir: Path, name: str, rows: list[dict]) -> None:
    import pandas as pd

    if not rows:
        return
    with atomic_path(run_dir / name) as tmp:
        pd.DataFrame(rows).to_csv(tmp, index=False)


def write_csvs(run_dir: Path, results: dict) -> None:
    """Every metric of the run in long-format CSVs beside ``summary.json``.

    Parameters
    ----------
    run_dir : Path
        The run's folder.
    results : dict
        Stage -> model -> results, as ``summary.json`` holds them.
    """
    probes, segments, ablation, search = [], [], [], []
    for model, r in results.get("extract", {}).items():
        for scale, p in r.get("probes", {}).items():
            for layer, acc in enumerate(p["accuracy"]):
                probes.append(
                    {
                        "model": model,
                        "label": scale,
                        "layer": layer,
                        "accuracy": acc,
                        "accuracy_low": p["accuracy_ci"][layer][0],
                        "accuracy_high": p["accuracy_ci"][layer][1],
                        "control_accuracy": p["control_accuracy"][layer],
                        "selectivity": p["selectivity"][layer],
                        "selectivity_low": p["selectivity_ci"][layer][0],
                        "selectivity_high": p["selectivity_ci"][layer][1],
                    }
                )
    for model, r in results.get("segment", {}).items():
        for method, m in r["methods"].items():
            for scale, layers in m["scale_layers"].items():
                segments.append(
                    {
                        "model": model,
                        "method": method,
                        "scale": scale,
                        "layers": " ".join(map(str, layers)),
                        "share": m["shares"][scale],
                    }
                )
    for model, r in results.get("align", {}).items():
        for method, metrics in r["table"].items():
            for metric, value in metrics.items():
                if metric == "kind":
                    continue
                ablation.append(
                    {
                        "model": model,
                        "method": method,
                        "kind": metrics["kind"],
                        "metric": metric,
                        "mean": value[0],
                        "sd": value[1],
                    }
                )
        search += [{"model": model, **row} for row in r["grid_search"]]
    _frame_csv(run_dir, "probes.csv", probes)
    _frame_csv(run_dir, "segmentation.csv", segments)
    _frame_csv(run_dir, "alignment_ablation.csv", ablation)
    _frame_csv(run_dir, "lambda_search.csv", search)


def _embed_images(body: str, run_dir: Path) -> str:
    def inline(match):
        src = html.unescape(match.group(2))
        path = run_dir / src
        if "/" in src or not path.is_file():
            return match.group(0)
        data = base64.b64encode(path.read_bytes()).decode("ascii")
        return f'{match.group(1)}"data:image/png;base64,{data}"'

    return re.sub(r'(<img[^>]*?src=)"([^"]+\.png)"', inline, body)


def _fold_long_tables(body: str) -> str:
    """Each table with more than :data:`FOLD_ROWS` body rows inside ``<details>``."""

    def fold(match):
        table = match.group(0)
        rows = table.count("<tr") - 1  # the header row
        if rows <= FOLD_ROWS:
            return table
        return f"<details><summary>table of {rows} rows</summary>\n{table}\n</details>"

    return re.sub(r"<table>.*?</table>", fold, body, flags=re.S)


def write_report(run_dir: Path, markdown_text: str, *, title: str) -> Path:
    """Render the run's Markdown to one HTML file with every PNG embedded.

    Parameters
    ----------
    run_dir : Path
        The run's folder (figures are read from it; ``report.html`` is written there).
    markdown_text : str
        The whole report.
    title : str
        The page's title.

    Returns
    -------
    Path
        The written ``report.html``.
    """
    import markdown

    md = markdown.Markdown(
        extensions=["tables", "toc"], extension_configs={"toc": {"toc_depth": "2-2"}}
    )
    body = _fold_long_tables(md.convert(markdown_text))
    toc = f'<nav class="toc"><strong>Contents</strong>{md.toc}</nav>' if md.toc_tokens else ""
    # the contents after the title and the opening paragraph (the run's settings)
    first_h2 = body.find("<h2")
    body = body[:first_h2] + toc + "\n" + body[first_h2:] if first_h2 != -1 else toc + body
    page = (
        "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title><style>{_CSS}</style></head>\n<body>\n"
        f"{_embed_images(body, run_dir)}\n</body></html>\n"
    )
    path = run_dir / "report.html"
    atomic_write_text(path, page)
    return path
