"""Signal processing with no learned part: the STFT grids, phase reconstruction, log-magnitude interpolation."""
