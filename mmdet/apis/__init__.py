"""Public high-level API (mmdetection 2.x names)."""
