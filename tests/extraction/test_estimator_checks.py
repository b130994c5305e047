"""scikit-learn's estimator checks, where they apply to a text transformer.

The extractor's input is a list of texts. Checks that feed it numeric arrays
cannot apply: each is listed with the reason, and ``xfail_strict`` makes a
listed check that starts passing fail the suite, so the list stays exact.
The properties those checks protect are tested on texts in
``test_extractor.py`` (fit returns self, idempotence, pickling, clone,
sample-order and batch invariance, parameters untouched).
"""

from sklearn.utils.estimator_checks import parametrize_with_checks

from msma_sklearn import HiddenStateExtractor

_NUMERIC = (
    "feeds a numeric array; the extractor takes a list of texts and rejects numbers by "
    "design (its text equivalent is in test_extractor.py)"
)
_NUMERIC_CHECKS = [
    "check_fit_score_takes_y",
    "check_estimators_overwrite_params",
    "check_dont_overwrite_parameters",
    "check_estimators_fit_returns_self",
    "check_readonly_memmap_input",
    "check_n_features_in_after_fitting",
    "check_positive_only_tag_during_fit",
    "check_estimators_dtypes",
    "check_complex_data",
    "check_dtype_object",
    "check_pipeline_consistency",
    "check_estimators_nan_inf",
    "check_estimators_pickle",
    "check_f_contiguous_array_estimator",
    "check_transformer_data_not_an_array",
    "check_transformer_general",
    "check_transformer_preserve_dtypes",
    "check_methods_sample_order_invariance",
    "check_methods_subset_invariance",
    "check_fit2d_1feature",
    "check_dict_unchanged",
    "check_fit_idempotent",
    "check_fit_check_is_fitted",
    "check_n_features_in",
    "check_fit1d",
    "check_fit2d_predict1d",
]
_MESSAGE = (
    "expects sklearn's wording for an empty / one-sample numeric matrix; the extractor "
    "answers with its own text-input message (tested in test_extractor.py)"
)


def _expected_failures(estimator):
    failures = {name: _NUMERIC for name in _NUMERIC_CHECKS}
    failures["check_estimators_empty_data_messages"] = _MESSAGE
    failures["check_fit2d_1sample"] = _MESSAGE
    return failures


@parametrize_with_checks(
    [HiddenStateExtractor("tiny-gpt2")],
    expected_failed_checks=_expected_failures,
    xfail_strict=True,
)
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)
