"""The deciding core: pure Python, no boto3. (alarm, policy, evidence, history) -> plan."""
