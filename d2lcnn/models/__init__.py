"""Chapter models, generated from the notebooks' #@save cells by tools/export.py."""
