"""Programs built on the library: the demo, benchmarks and evaluations behind the
``pose-perception`` command. Nothing in ``core`` or ``ros`` imports them."""
