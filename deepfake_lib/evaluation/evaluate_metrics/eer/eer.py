"""Equal error rate as an ``evaluate`` metric module that loads offline, by local path.

Usage (no Hub access needed)::

    import evaluate
    from deepfake_lib.evaluation.metrics import EER_METRIC_PATH

    eer_metric = evaluate.load(str(EER_METRIC_PATH))
    eer_metric.compute(references=labels, predictions=scores)  # {"eer": ..., "threshold": ...}

``evaluate`` copies this script into its module cache and imports it from there, so it must
use absolute imports only. The computation lives in :func:`deepfake_lib.evaluation.metrics.compute_eer`.
"""

import datasets
import evaluate

from deepfake_lib.evaluation.error_rates import compute_eer

_DESCRIPTION = """\
Equal error rate (EER) of a bona fide / spoof detector: the error rate at the score threshold
where the false acceptance rate (spoofs accepted) equals the false rejection rate (bona fide
clips rejected). References use 1 = bona fide (Real) and 0 = spoof (Fake); predictions are
scores where higher means more bona fide (log-odds or probabilities). Rates are evaluated
only at distinct score values, so ties between the classes cannot lower the EER; the EER is
where the straight line between the two adjacent distinct thresholds at which FAR - FRR
changes sign crosses FAR = FRR (see deepfake_lib.evaluation.metrics.compute_eer).
"""

_KWARGS_DESCRIPTION = """\
Args:
    predictions (`list` of `float`): scores, higher = more bona fide.
    references (`list` of `int`): 1 = bona fide (Real), 0 = spoof (Fake).
Returns:
    eer (`float`): equal error rate in [0, 1]; lower is better.
    threshold (`float`): accept as bona fide when score >= threshold.
Examples:
    >>> eer_metric = evaluate.load(str(EER_METRIC_PATH))
    >>> eer_metric.compute(references=[0, 0, 0, 0, 1, 1, 1, 1],
    ...                    predictions=[1.0, 2.0, 3.0, 5.0, 4.0, 6.0, 7.0, 8.0])
    {'eer': 0.25, 'threshold': 5.0}
"""

_CITATION = """\
@article{wang2020asvspoof,
  title={{ASVspoof} 2019: A large-scale public database of synthesized, converted and
         replayed speech},
  author={Wang, Xin and others},
  journal={Computer Speech \\& Language},
  volume={64},
  year={2020}
}
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class EqualErrorRate(evaluate.Metric):
    """Equal error rate of bona fide (1) versus spoof (0) scores."""

    def _info(self) -> evaluate.MetricInfo:
        return evaluate.MetricInfo(
            module_type="metric",
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features(
                {
                    "predictions": datasets.Value("float64"),
                    "references": datasets.Value("int32"),
                }
            ),
            reference_urls=["https://www.asvspoof.org/"],
        )

    def _compute(self, predictions, references) -> dict:
        result = compute_eer(references, predictions)
        return {"eer": result.eer, "threshold": result.threshold}
