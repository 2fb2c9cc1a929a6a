"""Fit matching: the interiors' representation (sections), the fit model, its numba kernels with their reference
implementations, category profiles, the matcher and the mailing filter (docs/fit-model.md). It is given the
catalogue as arrays (`fitcore.fit.catalogue`) and knows no database."""
