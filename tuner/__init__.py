"""tune: reproducible autotuning and design-space exploration for ML software/hardware co-design."""

__version__ = "0.1.0"
