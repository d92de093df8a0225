"""Real peers run side by side with our methods: other systems' restorers behind the same `Restorer`.

opus.py: the Opus codec's packet-loss concealment (libopus 1.5: classic PLC, Deep PLC, and in-band
FEC plus Deep PLC as a reference that uses side information), on the library `make opus` unpacks.
The classic baselines for holes and the band live in baselines/ (ar.py, sbr.py).
"""
