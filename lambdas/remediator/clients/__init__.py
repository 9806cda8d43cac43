"""The only place that talks to AWS. Each class implements a port from remediator.core.ports."""
