"""report.html a person reads: the summary first, a table of contents whose links land,
long tables folded, still one self-contained file."""

import re
from html.parser import HTMLParser

import numpy as np

from msma_sklearn.plotting import save_figure
from msma_sklearn.report import FOLD_ROWS, summary_section, write_report


class _Outline(HTMLParser):
    def __init__(self):
        super().__init__()
        self.h2, self.ids, self.links, self.srcs, self.events = [], set(), [], [], []
        self._in_h2 = False

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if "id" in a:
            self.ids.add(a["id"])
        if tag == "a" and a.get("href", "").startswith("#"):
            self.links.append(a["href"][1:])
        if tag in ("img", "script", "link"):
            self.srcs.append(a.get("src") or a.get("href") or "")
        if tag in ("h2", "table", "details", "nav"):
            self.events.append(tag)
        self._in_h2 = tag == "h2"

    def handle_data(self, data):
        if self._in_h2 and data.strip():
            self.h2.append(data.strip())
            self._in_h2 = False


def _results():
    return {
        "segment": {
            "m1": {
                "used": "cka",
                "methods": {"cka": {"scale_layers": {"local": [0, 1], "global": [2, 3, 4]}}},
                "heatmap": "layer_similarity_m1.png",
            }
        },
        "align": {
            "m1": {
                "claims": [
                    {"claim": "Full MSMA helps", "verdict": "supported"},
                    {"claim": "No curvature hurts", "verdict": "inconclusive"},
                ]
            }
        },
        "intervene": {
            "models": {
                "m2": {
                    "claims": [{"claim": "amplify", "dose": "alpha=1.2", "verdict": "contradicted"}]
                }
            }
        },
    }


def test_the_summary_lists_every_claim_with_its_verdict_and_the_scales():
    text = summary_section(_results())
    assert "1 supported, 1 inconclusive, 1 contradicted" in text
    assert "| m1 | alignment | Full MSMA helps |  | **supported** |" in text
    assert "| m2 | interventions | amplify | alpha=1.2 | **contradicted** |" in text
    assert "- `m1` (cka): local 0-1, global 2-4" in text
    assert "![layer similarity](layer_similarity_m1.png)" in text


def test_report_html_opens_on_the_summary_with_contents_and_folded_tables(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    ax.imshow(np.eye(3))
    save_figure(fig, tmp_path / "layer_similarity_m1.png")
    long_rows = "\n".join(f"| {i} | {i * i} |" for i in range(FOLD_ROWS + 5))
    short_rows = "\n".join(f"| {i} | x |" for i in range(3))
    markdown = "\n".join(
        [
            "# msma run `r`\n\nSettings paragraph.\n",
            summary_section(_results()),
            "## Linear-probe accuracy\n\n| layer | acc |\n|---|---|\n" + long_rows + "\n",
            "## Alignment ablation\n\n| a | b |\n|---|---|\n" + short_rows + "\n",
        ]
    )
    page = write_report(tmp_path, markdown, title="r").read_text()
    outline = _Outline()
    outline.feed(page)
    assert outline.h2[0] == "Summary"
    assert outline.events.index("nav") < outline.events.index("h2")  # contents first
    # every contents link lands on a heading, and every section is in the contents
    assert set(outline.links) <= outline.ids
    assert len(outline.links) == len(outline.h2) == 3
    # the long table folded with its size, the short ones (the summary's, the ablation's)
    # open
    assert page.count("<details>") == 1
    assert f"table of {FOLD_ROWS + 5} rows" in page
    folded = re.search(r"<details>.*?</details>", page, flags=re.S).group(0)
    assert "<td>4</td>" in folded and "Alignment" not in folded
    # one self-contained file: every image inline, nothing fetched
    assert outline.srcs and all(s.startswith("data:image/png;base64,") for s in outline.srcs)
