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

# Reads through GetRecords (shared by every polling consumer of a shard): 2 MB/s and 5 calls/s per shard.
# As for writes, the decimal reading of "2 MB/s" errs towards calling the shards saturated.
SHARD_READ_BYTES_PER_SECOND: Final = 2_000_000
SHARD_GET_RECORDS_PER_SECOND: Final = 5

# Enhanced fan-out (RegisterStreamConsumer): 20 consumers per stream (Provisioned and On-demand Standard;
# On-demand Advantage allows 50, in some Regions only: we keep to 20), at most 5 in CREATING at once.
MAX_EFO_CONSUMERS_PER_STREAM: Final = 20
MAX_EFO_CONSUMERS_CREATING: Final = 5
