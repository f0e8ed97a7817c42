"""Conformance suites that ship with tune: `knob_checks` (every knob kind) and `target_checks`
(every target driver). A new kind or driver passes them before it is registered."""
