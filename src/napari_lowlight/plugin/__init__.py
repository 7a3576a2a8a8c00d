"""napari glue: the npe2 manifest, dock widgets and sample data.

Only this subpackage imports napari, magicgui or Qt; it turns layers into
arrays, calls the core off the GUI thread and turns results back into layers.
"""
