"""Pure decisions and typed models. Nothing in here performs I/O."""
