"""Shipped dequantizer weights, installed as ``napari_lowlight.weights`` (see README.md)."""
