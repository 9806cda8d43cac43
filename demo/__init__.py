"""`make demo`: deploy the real CDK app into a local AWS emulator and play seven incidents."""
