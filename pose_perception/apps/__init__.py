"""Programs built on the core library (evaluations); not imported by the core or the nodes."""
