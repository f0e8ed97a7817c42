"""The flagship's obvious point (search_spaces/resnet18-vta.toml `seeds`): the smallest design.

bench/vta_search.py chose it: measured right after the baseline, it lifts TPE from about 95% to
about 99% of the exact front's hypervolume at 60 trials. A declared seed that breaks a constraint
is dropped without a word (tuner.seeds.obvious), so this checks it survives, and that it is the
low corner of every size knob, which is what the README says it is.
"""

from __future__ import annotations

from tuner.knobs import dist as D
from tuner.seeds import obvious
from tuner.study import load_study


def test_the_flagship_seeds_its_smallest_design_after_the_baseline():
    spec = load_study("resnet18-vta")
    points = obvious(spec.space, spec.baseline, spec.seeds)
    lowest = {k.name: k.decode(D.values(k.distribution())[0]) for k in spec.space.knobs.values()}
    assert points == [lowest]
    assert not spec.space.violations(lowest)
    assert lowest != spec.space.complete(spec.baseline)
