"""Logger, Tracer and Metrics, created once for the whole remediator."""

from aws_lambda_powertools import Logger, Metrics, Tracer

SERVICE = "kinesis-remediator"
NAMESPACE = "KinesisRemediator"

logger = Logger(service=SERVICE)
tracer = Tracer(service=SERVICE)
metrics = Metrics(namespace=NAMESPACE, service=SERVICE)
