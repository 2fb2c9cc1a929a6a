"""Scan processing and fit matching: `fitcore.scan` turns a raw scan into a foot passport, `fitcore.fit` matches
a passport against the catalogue's interiors. Pure computation: no devices, no SQL, no HTTP."""
