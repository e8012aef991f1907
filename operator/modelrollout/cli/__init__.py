"""The ``modelrollout`` command line, also installed as the kubectl plugin ``kubectl modelrollout``."""
