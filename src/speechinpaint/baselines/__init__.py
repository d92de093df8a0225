"""Restoration methods that need no trained network (interp, oracle) and the seed's MFCC-MLP."""
