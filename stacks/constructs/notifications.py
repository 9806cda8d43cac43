"""The e-mail channel: an encrypted SNS topic; each address subscribes with a filter on itself.

Every message carries its recipients (the stream policy's notify.emails, lower-cased) in the String.Array message
attribute `recipients` (remediator.clients.notifier), and each address's subscription accepts the messages that
name it: one value per filter policy at any number of streams (SNS allows 150 values and 5 attributes per filter
policy). SNS matches a String.Array attribute when any of its values matches (SNS developer guide, "Subscription
filter policies": attribute string value matching on String.Array)."""

from __future__ import annotations

from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from constructs import Construct
from remediator.policy_files import PolicySet

FILTER_POLICY_SCOPE = "MessageAttributes"
RECIPIENTS_ATTRIBUTE = "recipients"


def addresses(policies: PolicySet) -> list[str]:
    """Every address in the policies' notify.emails, lower-cased, sorted, once each."""
    return sorted({address.lower() for policy in policies.streams.values() for address in policy.notify.emails})


class Notifications(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, policies: PolicySet) -> None:
        super().__init__(scope, construct_id)
        self.key = kms.Key(
            self, "TopicKey", enable_key_rotation=True, description="Kinesis Remediator notifications topic"
        )
        self.topic = sns.Topic(self, "Topic", display_name="Kinesis Remediator", master_key=self.key, enforce_ssl=True)
        for address in addresses(policies):
            # One subscription per address (SNS keeps one per endpoint), filtered to the messages that name it.
            subscription = self.topic.add_subscription(
                subscriptions.EmailSubscription(
                    address,
                    filter_policy={RECIPIENTS_ATTRIBUTE: sns.SubscriptionFilter.string_filter(allowlist=[address])},
                )
            )
            # The scope spelled out (CDK leaves it unset): a later deploy that changes or drops a filter otherwise
            # fails in CloudFormation with "FilterPolicyScope: Invalid value [null]" (aws-cdk#24804,
            # cloudformation-coverage-roadmap#1840). MessageAttributes is where the notifier puts `recipients`.
            resource = subscription.node.default_child
            assert isinstance(resource, sns.CfnSubscription)
            resource.add_property_override("FilterPolicyScope", FILTER_POLICY_SCOPE)
