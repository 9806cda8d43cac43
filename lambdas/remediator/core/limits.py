"""AWS limits our code enforces because the local emulator does not.

Sources: ../shared/reference/aws-facts.md (botocore Kinesis model, Kinesis quotas page).
"""

from typing import Final

# UpdateShardCount
MAX_SCALE_UP_FACTOR: Final = 2  # at most 2x the current shard count per call
MAX_SCALINGS_PER_24H: Final = 10  # per stream, rolling 24 h
MAX_SHARDS_PER_STREAM: Final = 10_000
# Scalings a policy may spend per day; the rest of AWS's 10 stays in reserve for humans.
RESHARD_RESERVE: Final = 2
MAX_POLICY_DAILY_BUDGET: Final = MAX_SCALINGS_PER_24H - RESHARD_RESERVE
# A scale-in never leaves fewer than this many of AWS's 10 daily scalings for a scale-up (issue 7).
SCALE_UP_RESERVE: Final = 2
# One call scales down to no less than half the current count (aws-facts.md §1: "scale down below 1/2").
MIN_SCALE_DOWN_FRACTION: Final = 0.5

# Kinesis control plane (aws-facts.md §5): DescribeStreamSummary, per account (shared with every other caller).
DESCRIBE_STREAM_SUMMARY_PER_SECOND: Final = 20

# Per-shard write capacity. AWS documents "1 MB/s"; the smaller (decimal) reading errs
# towards calling a stream saturated rather than missing it.
SHARD_WRITE_BYTES_PER_SECOND: Final = 1_000_000
SHARD_WRITE_RECORDS_PER_SECOND: Final = 1_000

# Retention
MIN_RETENTION_HOURS: Final = 24
MAX_RETENTION_HOURS: Final = 8_760

# CloudWatch alarm periods we accept (Kinesis stream metrics are 1-minute).
METRIC_PERIOD_SECONDS: Final = 60

# CloudWatch: metrics one metric-math alarm may read. UNCONFIRMED: not in aws-facts.md; CloudWatch's
# documentation of metric-math alarms says "up to 10 metrics".
MAX_ALARM_METRICS: Final = 10

# DynamoDB (KCL lease tables). Not in ../shared/reference/aws-facts.md: UNCONFIRMED there, so enforced on the
# conservative side. Read from the DynamoDB developer guide (switching.capacitymode.html, ServiceQuotas.html).
# - Provisioned throughput may be raised as often as needed; decreases are limited per day, and the remediator
#   never decreases.
# - Switching a table from provisioned to on-demand: the guide now says up to four times per rolling 24 h, older
#   editions said once per 24 h. [UNCONFIRMED] We allow one switch per table per rolling 24 h.
DYNAMODB_MIN_CAPACITY_UNITS: Final = 1
DYNAMODB_MAX_TABLE_WRITE_CAPACITY: Final = 40_000  # default per-table quota (adjustable) [UNCONFIRMED]
DYNAMODB_BILLING_MODE_SWITCHES_PER_24H: Final = 1  # to on-demand, per table [UNCONFIRMED: AWS may allow 4]

# Reads through GetRecords (shared by every polling consumer of a shard): 2 MB/s and 5 calls/s per shard.
# As for writes, the decimal reading of "2 MB/s" errs towards calling the shards saturated.
SHARD_READ_BYTES_PER_SECOND: Final = 2_000_000
SHARD_GET_RECORDS_PER_SECOND: Final = 5

# Enhanced fan-out (RegisterStreamConsumer): 20 consumers per stream (Provisioned and On-demand Standard;
# On-demand Advantage allows 50, in some Regions only: we keep to 20), at most 5 in CREATING at once.
MAX_EFO_CONSUMERS_PER_STREAM: Final = 20
MAX_EFO_CONSUMERS_CREATING: Final = 5

# Lambda UpdateEventSourceMapping on a Kinesis source (aws-facts.md §4, from the botocore Lambda model).
MIN_ESM_BATCH_SIZE: Final = 1
MAX_ESM_BATCH_SIZE: Final = 10_000
MIN_PARALLELIZATION_FACTOR: Final = 1
MAX_PARALLELIZATION_FACTOR: Final = 10
MAX_BATCHING_WINDOW_SECONDS: Final = 300  # 0..300 whole seconds
MIN_RETRY_ATTEMPTS: Final = -1  # -1: retry until the record expires (AWS's default)
MAX_RETRY_ATTEMPTS: Final = 10_000
RECORD_AGE_UNLIMITED: Final = -1  # AWS's default; otherwise 60..604,800 s (0..59 are rejected)
MIN_RECORD_AGE_SECONDS: Final = 60
MAX_RECORD_AGE_SECONDS: Final = 604_800
# What a Kinesis mapping has when the API leaves a setting out (aws-facts.md §4 defaults).
ESM_DEFAULT_BATCH_SIZE: Final = 100
# Lambda's function timeout quota: 900 s (15 min). UNCONFIRMED here: aws-facts.md does not list it (Lambda
# quotas page); used only to cap the timeout an advice suggests, never sent by an action.
MAX_FUNCTION_TIMEOUT_SECONDS: Final = 900
