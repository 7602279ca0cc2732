"""Sphinx configuration of the d2lcnn book: the chapter notebooks with their saved outputs.

`make book` copies index.md and notebooks/*.ipynb into a staging folder and builds it with
this folder as the configuration directory (`sphinx-build -c docs/book`), so the chapters
are rendered exactly as committed; nothing is executed.
"""

project = "d2lcnn: the classic convolutional networks"
author = "d2lcnn contributors"
copyright = "d2lcnn contributors, MIT license"
language = "en"

extensions = ["myst_nb"]
root_doc = "index"
exclude_patterns = ["_build", "**.ipynb_checkpoints"]

# The committed outputs are the honest record of a real run; never re-run them here.
nb_execution_mode = "off"
# Widgets need a kernel or JavaScript from a CDN: show the panel's static snapshot
# (text/html, images) first; a saved widget view only before the bare text repr.
nb_mime_priority_overrides = [("html", "application/vnd.jupyter.widget-view+json", 115)]
nb_ipywidgets_js = {}  # no CDN scripts: the site must build and read offline
myst_enable_extensions = ["dollarmath", "colon_fence"]
# a notebook's link to ../README.md or a badge target is not a chapter; say so once, quietly
suppress_warnings = ["myst.xref_missing"]

html_theme = "sphinx_book_theme"
html_title = "d2lcnn"
html_static_path = ["_static"]
html_css_files = ["cjk.css"]  # the glossaries' Chinese terms need a CJK font
html_theme_options = {
    "repository_url": "https://github.com/d2lcnn/d2lcnn",
    "repository_branch": "main",
    "path_to_docs": "notebooks",
    "use_repository_button": True,
    "show_toc_level": 2,
}
html_last_updated_fmt = None
