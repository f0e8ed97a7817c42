"""Surrogate-model pruning for multi-objective campaigns (Optuna's pruners are single-objective)."""

from tuner.surrogate.policy import PruningPolicy, Settings

__all__ = ["PruningPolicy", "Settings"]
