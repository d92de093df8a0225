"""speechinpaint: restore missing time-frequency regions of speech (holes, time gaps, a missing band)."""

__version__ = "0.1.0"
