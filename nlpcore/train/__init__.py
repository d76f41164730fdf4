"""Training entry points: ``nlpcore train <task> --config <yaml>``."""
