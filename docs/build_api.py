"""Build the API reference from the docstrings with pdoc (``make docs``).

Usage: python docs/build_api.py [OUTPUT_DIR]   (default: docs/_build/api)
"""

import sys
from pathlib import Path

# the public modules; private ones (leading underscore) are documented through them
MODULES = [
    "msma_sklearn",
    "msma_sklearn.extraction",
    "msma_sklearn.segmentation",
    "msma_sklearn.alignment",
    "msma_sklearn.interventions",
    "msma_sklearn.metrics",
    "msma_sklearn.metrics.text",
    "msma_sklearn.datasets",
    "msma_sklearn.plotting",
    "msma_sklearn.profile",
    "msma_sklearn.report",
    "msma_sklearn.stats",
    "msma_sklearn.study",
    "msma_sklearn.utils",
]


def build(output: Path) -> Path:
    import pdoc
    import pdoc.render

    pdoc.render.configure(docformat="numpy", search=True)
    pdoc.pdoc(*MODULES, output_directory=Path(output))
    return Path(output) / "index.html"


if __name__ == "__main__":
    out = Path(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).parent / "_build" / "api")
    index = build(out)
    print(f"API reference: {index}")
