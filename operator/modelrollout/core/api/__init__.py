"""The API of modelrollout: pydantic models that mirror the CRDs exactly.

The models are the single source of truth. ``modelrollout.core.api.crdgen`` turns them
into the structural OpenAPI schemas under ``crds/``, and a test fails when the committed
YAML and the models disagree.
"""
