"""The report's opening: what held and what did not, the scales per model, one figure."""

from __future__ import annotations

from ..utils._format import layer_ranges

__all__ = ["summary_section"]


def summary_section(results: dict) -> str:
    """Every judged claim with its verdict, each model's scales, one figure.

    Parameters
    ----------
    results : dict
        Stage -> results, as ``summary.json`` holds them (stages that did not
        run are left out).

    Returns
    -------
    str
        Markdown: a ``## Summary`` section.
    """
    lines = ["## Summary", ""]
    claims = []
    for model, r in results.get("align", {}).items():
        for c in r.get("claims", []):
            claims.append((model, "alignment", c["claim"], "", c["verdict"]))
    for model, r in results.get("intervene", {}).get("models", {}).items():
        for c in r.get("claims", []):
            claims.append((model, "interventions", c["claim"], c.get("dose", ""), c["verdict"]))
    if claims:
        counts = {v: sum(c[4] == v for c in claims) for v in dict.fromkeys(c[4] for c in claims)}
        lines += [
            "The original claims as this run judged them ("
            + ", ".join(f"{n} {v}" for v, n in counts.items())
            + "); each verdict is about that model at that dose only, with its test and "
            "power in the section below.",
            "",
            "| model | study | claim | dose | verdict |",
            "|---|---|---|---|---|",
        ]
        lines += [f"| {m} | {s} | {claim} | {d} | **{v}** |" for m, s, claim, d, v in claims]
        lines.append("")
    scales, figure = [], None
    for model, r in results.get("segment", {}).items():
        used = r.get("used")
        method = r.get("methods", {}).get(used) if used else None
        if not method:
            continue
        parts = ", ".join(
            f"{name} {layer_ranges(layers)}" for name, layers in method["scale_layers"].items()
        )
        scales.append(f"- `{model}` ({used}): {parts}")
        figure = figure or r.get("heatmap")
    if scales:
        lines += ["Scales (hidden-state indices) each model was given downstream:", "", *scales]
        lines.append("")
    if figure:
        lines += [f"![layer similarity]({figure})", ""]
    return "\n".join(lines) + "\n"
