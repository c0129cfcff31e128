"""Typed models of FluxUp's CRDs (one module per kind) and shared constants.

Pure data; parsed once at the boundary. Imports nothing that does I/O.
"""
