"""The run's report: one renderer per section over the study's results and the run's
design, and the writers of the CSV tables and the self-contained ``report.html``.

Nothing here runs a model or decides a verdict: the sections render what
:mod:`msma_sklearn.study` measured and judged.
"""

from ._alignment import alignment_section
from ._extraction import LABELS_DESCRIBED, extraction_section
from ._format import file_stem, layer_ranges
from ._html import FOLD_ROWS, write_csvs, write_report
from ._interventions import interventions_section, samples_phrase
from ._segmentation import README_TABLE, segmentation_section
from ._summary import summary_section

__all__ = [
    "FOLD_ROWS",
    "LABELS_DESCRIBED",
    "README_TABLE",
    "alignment_section",
    "extraction_section",
    "file_stem",
    "interventions_section",
    "layer_ranges",
    "samples_phrase",
    "segmentation_section",
    "summary_section",
    "write_csvs",
    "write_report",
]
