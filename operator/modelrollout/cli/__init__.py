"""The ``modelrollout`` command line, also the kubectl plugin ``kubectl modelrollout``."""
