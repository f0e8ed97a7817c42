"""The surrogate: predicts every objective with an uncertainty, and the chance of failure.

Two regressors, chosen by the size of the encoded space (measured on resnet18-vta, 132
held-out proposals after 12 measurements: mean relative error 2.0% for the GP against 5.7%
for extra-trees; `bench/surrogate.py` and the README have the pruning figures):

- a Gaussian process per objective (Matern 5/2 with one length scale per feature plus a noise
  term, on standardised features and on log values when an objective is positive) for small
  spaces: smooth, extrapolates trends such as area growing with the GEMM shape, and its
  predictive standard deviation is the uncertainty;
- extra-trees for wide spaces (hundreds of one-hot flag columns) where a GP's per-feature length
  scales cannot be fitted from tens of points: the spread of the trees' predictions is the
  uncertainty, and fitting takes milliseconds.

Failure (build/run failure or infeasibility) is predicted by an extra-trees classifier.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass

import numpy as np
from sklearn.ensemble import ExtraTreesClassifier, ExtraTreesRegressor
from sklearn.exceptions import ConvergenceWarning
from sklearn.gaussian_process import GaussianProcessRegressor
from sklearn.gaussian_process.kernels import ConstantKernel, Matern, WhiteKernel
from sklearn.preprocessing import StandardScaler

GP_MAX_FEATURES = 32      # wider encodings use extra-trees
GP_MAX_POINTS = 600       # a GP fit is cubic in the number of measured trials


@dataclass(frozen=True)
class Prediction:
    mean: np.ndarray          # (k,) in the objectives' own units
    std: np.ndarray           # (k,) uncertainty in the same units
    p_fail: float             # chance that building or running fails


class Surrogate:
    def __init__(self, kind: str = "auto", n_trees: int = 64, seed: int = 0) -> None:
        self.kind = kind
        self.n_trees = n_trees
        self.seed = seed
        self.fit_seconds = 0.0     # total time spent fitting: the surrogate's own cost
        self.fits = 0
        self.kind_: str = ""
        self.models_: list = []
        self.scaler_: StandardScaler | None = None
        self.log_: np.ndarray | None = None
        self.classifier_: ExtraTreesClassifier | None = None

    def fit(self, X_ok: np.ndarray, Y: np.ndarray, X_all: np.ndarray, failed: np.ndarray) -> "Surrogate":
        t0 = time.perf_counter()
        self.kind_ = self.kind
        if self.kind == "auto":
            small = X_ok.shape[1] <= GP_MAX_FEATURES and len(X_ok) <= GP_MAX_POINTS
            self.kind_ = "gp" if small else "trees"
        if self.kind_ == "gp":
            self._fit_gp(X_ok, Y)
        else:
            self.models_ = [ExtraTreesRegressor(n_estimators=self.n_trees, random_state=self.seed,
                                                n_jobs=1).fit(X_ok, Y)]
        self.classifier_ = None
        if failed.any() and not failed.all():
            self.classifier_ = ExtraTreesClassifier(n_estimators=self.n_trees // 2, random_state=self.seed,
                                                    n_jobs=1).fit(X_all, failed)
        self.fit_seconds += time.perf_counter() - t0
        self.fits += 1
        return self

    def probe_seconds(self, X_ok: np.ndarray, Y: np.ndarray) -> float | None:
        """What a refit would cost, learnt for a fraction of one: the Gaussian process of the
        first objective alone is fitted (and thrown away), times the number of objectives (each
        has its own GP of the same size; the failure classifier is left out, so this is low
        rather than high). None where the fit is extra-trees (milliseconds: just fit)."""
        small = X_ok.shape[1] <= GP_MAX_FEATURES and len(X_ok) <= GP_MAX_POINTS
        if self.kind == "trees" or (self.kind == "auto" and not small):
            return None
        t0 = time.perf_counter()
        Surrogate(kind="gp", seed=self.seed)._fit_gp(X_ok, Y[:, :1])
        return (time.perf_counter() - t0) * Y.shape[1]

    def _fit_gp(self, X: np.ndarray, Y: np.ndarray) -> None:
        self.scaler_ = StandardScaler().fit(X)
        Xs = self.scaler_.transform(X)
        self.log_ = np.all(Y > 0, axis=0)
        self.models_ = []
        for j in range(Y.shape[1]):
            y = np.log(Y[:, j]) if self.log_[j] else Y[:, j]
            kernel = (ConstantKernel(1.0) * Matern(length_scale=np.full(X.shape[1], 2.0), nu=2.5)
                      + WhiteKernel(1e-3))
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                gp = GaussianProcessRegressor(kernel, normalize_y=True, random_state=self.seed).fit(Xs, y)
            self.models_.append(gp)

    def predict(self, x: np.ndarray) -> Prediction:
        assert self.models_, "fit first"
        x = x.reshape(1, -1)
        if self.kind_ == "gp":
            assert self.scaler_ is not None and self.log_ is not None
            xs = self.scaler_.transform(x)
            mean, std = [], []
            for gp, log in zip(self.models_, self.log_):
                mu, sd = gp.predict(xs, return_std=True)
                if log:   # a log-normal's median, and its spread to first order
                    mean.append(float(np.exp(mu[0])))
                    std.append(float(np.exp(mu[0]) * sd[0]))
                else:
                    mean.append(float(mu[0]))
                    std.append(float(sd[0]))
            m, s = np.array(mean), np.array(std)
        else:
            trees = self.models_[0].estimators_
            # the row is cast once to what each tree's own check would make of it (float32, C order):
            # 64 checks per candidate were most of the surrogate's time per trial
            x32 = np.ascontiguousarray(x, dtype=np.float32)
            per_tree = np.stack([t.predict(x32, check_input=False)[0] for t in trees]).reshape(len(trees), -1)
            m, s = per_tree.mean(axis=0), per_tree.std(axis=0)
        p_fail = 0.0
        if self.classifier_ is not None:
            classes = list(self.classifier_.classes_)
            p_fail = float(self.classifier_.predict_proba(x)[0][classes.index(True)]) if True in classes else 0.0
        return Prediction(m, s, p_fail)
