"""Search and sampling over a step function: they never depend on a model class."""
