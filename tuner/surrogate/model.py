"""The surrogate: predicts every objective with an uncertainty, and the chance of failure.

Extra-trees (scikit-learn): the spread of the individual trees' predictions is the
uncertainty, fitting takes milliseconds for the few hundred trials a measured study has,
and mixed discrete knobs need no kernel design (a GP would, and scales cubically).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
from sklearn.ensemble import ExtraTreesClassifier, ExtraTreesRegressor


@dataclass(frozen=True)
class Prediction:
    mean: np.ndarray          # (k,) in the objectives' own units
    std: np.ndarray           # (k,) spread across trees
    p_fail: float             # chance that building or running fails


class Surrogate:
    def __init__(self, n_trees: int = 64, seed: int = 0) -> None:
        self.n_trees = n_trees
        self.seed = seed
        self.fit_seconds = 0.0     # total time spent fitting: the surrogate's own cost
        self.fits = 0
        self.regressor_: ExtraTreesRegressor | None = None
        self.classifier_: ExtraTreesClassifier | None = None

    def fit(self, X_ok: np.ndarray, Y: np.ndarray, X_all: np.ndarray, failed: np.ndarray) -> "Surrogate":
        t0 = time.perf_counter()
        self.regressor_ = ExtraTreesRegressor(n_estimators=self.n_trees, min_samples_leaf=1,
                                              random_state=self.seed, n_jobs=1).fit(X_ok, Y)
        self.classifier_ = None
        if failed.any() and not failed.all():
            self.classifier_ = ExtraTreesClassifier(n_estimators=self.n_trees // 2, random_state=self.seed,
                                                    n_jobs=1).fit(X_all, failed)
        self.fit_seconds += time.perf_counter() - t0
        self.fits += 1
        return self

    def predict(self, x: np.ndarray) -> Prediction:
        assert self.regressor_ is not None, "fit first"
        x = x.reshape(1, -1)
        per_tree = np.stack([t.predict(x)[0] for t in self.regressor_.estimators_])
        per_tree = per_tree.reshape(len(self.regressor_.estimators_), -1)
        p_fail = 0.0
        if self.classifier_ is not None:
            classes = list(self.classifier_.classes_)
            p_fail = float(self.classifier_.predict_proba(x)[0][classes.index(True)]) if True in classes else 0.0
        return Prediction(per_tree.mean(axis=0), per_tree.std(axis=0), p_fail)
