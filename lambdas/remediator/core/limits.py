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

# Per-shard write capacity. AWS documents "1 MB/s"; the smaller (decimal) reading errs
# towards calling a stream saturated rather than missing it.
SHARD_WRITE_BYTES_PER_SECOND: Final = 1_000_000
SHARD_WRITE_RECORDS_PER_SECOND: Final = 1_000

# Retention
MIN_RETENTION_HOURS: Final = 24
MAX_RETENTION_HOURS: Final = 8_760

# CloudWatch alarm periods we accept (Kinesis stream metrics are 1-minute).
METRIC_PERIOD_SECONDS: Final = 60

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
