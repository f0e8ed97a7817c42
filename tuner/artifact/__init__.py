"""From a finished study to a paper and an artifact evaluation.

One module per job: `table` (values rounded to their CI, chosen columns, reduced
configurations), `figures` (front, hypervolume over measurements, knob importance),
`importance` (Optuna's evaluators on the verified trials), `appendix` (the ACM artifact
appendix, Markdown and LaTeX), `bundle` (writes them all), `pack` (a study as one
archive), `reproduce` (re-measure points against the baseline), `reduce` (delta debugging
of a configuration). Provenance lives in `tuner.provenance`.
"""
