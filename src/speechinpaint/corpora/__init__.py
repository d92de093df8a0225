"""Corpora: the starter corpus (Debian packages), VCTK (the seed's corpus) and any folder of speech.

Each writes 16 kHz mono wav and one manifest.csv (manifest.py) that training reads; streams.py joins a
split's clips into one waveform per speaker for training crops and evaluation segments.
"""
