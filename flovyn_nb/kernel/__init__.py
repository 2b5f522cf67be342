"""Jupyter kernel integration: the IPython extension, ``%flovyn`` magics, batch mode."""
