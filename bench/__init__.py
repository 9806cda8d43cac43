"""`make bench`: the default policy against the known autoscalers on standard traces, and the remediator's own
figures (import time, handler latency, AWS calls per remediation, synth time at fleet scale)."""
