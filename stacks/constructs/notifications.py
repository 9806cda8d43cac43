"""The e-mail channel: an encrypted SNS topic; each address subscribes with a filter on its streams."""

from __future__ import annotations

from collections import defaultdict

from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from constructs import Construct
from remediator.policy_files import PolicySet

FILTER_POLICY_SCOPE = "MessageAttributes"


class Notifications(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, policies: PolicySet) -> None:
        super().__init__(scope, construct_id)
        self.key = kms.Key(
            self, "TopicKey", enable_key_rotation=True, description="Kinesis Remediator notifications topic"
        )
        self.topic = sns.Topic(self, "Topic", display_name="Kinesis Remediator", master_key=self.key, enforce_ssl=True)
        streams_by_address: dict[str, list[str]] = defaultdict(list)
        for name, policy in sorted(policies.streams.items()):
            for address in policy.notify.emails:
                streams_by_address[address.lower()].append(name)
        for address, streams in sorted(streams_by_address.items()):
            # One subscription per address (SNS keeps one per endpoint), filtered to that address's streams.
            subscription = self.topic.add_subscription(
                subscriptions.EmailSubscription(
                    address,
                    filter_policy={"stream": sns.SubscriptionFilter.string_filter(allowlist=streams)},
                )
            )
            # The scope spelled out (CDK leaves it unset): a later deploy that changes or drops a filter otherwise
            # fails in CloudFormation with "FilterPolicyScope: Invalid value [null]" (aws-cdk#24804,
            # cloudformation-coverage-roadmap#1840). MessageAttributes is where the notifier puts `stream`.
            resource = subscription.node.default_child
            assert isinstance(resource, sns.CfnSubscription)
            resource.add_property_override("FilterPolicyScope", FILTER_POLICY_SCOPE)
