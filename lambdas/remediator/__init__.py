"""Kinesis Remediator: diagnoses Kinesis Data Streams alarms and remediates them within policy bounds."""
