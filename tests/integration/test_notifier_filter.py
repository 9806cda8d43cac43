"""The notifier's `recipients` message attribute meets the e-mail subscriptions' filter as synthesized (FilterPolicy
{"recipients": ["<address>"]}, FilterPolicyScope MessageAttributes): each address gets its streams' messages and no
other, at any number of streams (one value per filter).

moto's SNS matches a String.Array attribute as SNS documents it (a filter value matches when any element of the
array equals it: SNS developer guide, "Amazon SNS example filter policies", customer_interests); the test below
would fail if it matched the array's JSON text as a whole."""

from __future__ import annotations

import json
from typing import Any

import pytest
from remediator.clients.notifier import SnsNotifier

ORDERS = ["Orders-Team@Example.com", "oncall@example.com"]
PAYMENTS = ["payments-team@example.com", "oncall@example.com"]


def subscribe(sns: Any, sqs: Any, topic: str, address: str) -> str:
    """A queue standing in for `address`'s mailbox, subscribed with the filter the stack gives that address."""
    queue = sqs.create_queue(QueueName=address.replace("@", "-at-").replace(".", "-"))["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(
        TopicArn=topic,
        Protocol="sqs",
        Endpoint=queue_arn,
        Attributes={
            "FilterPolicy": json.dumps({"recipients": [address]}),
            "FilterPolicyScope": "MessageAttributes",
        },
    )
    return str(queue)


def subjects(sqs: Any, queue: str) -> list[str]:
    messages = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages", [])
    return sorted(json.loads(m["Body"])["Subject"] for m in messages)


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        # on both streams' lists
        ("oncall@example.com", ["about orders", "about payments"]),
        # on the orders list only, written there in another case
        ("orders-team@example.com", ["about orders"]),
        ("payments-team@example.com", ["about payments"]),
        # on no list
        ("someone-else@example.com", []),
    ],
)
def test_an_address_gets_exactly_the_messages_of_its_streams(aws: Any, address: str, expected: list[str]) -> None:
    # Given a topic with the address subscribed as the stack subscribes it
    sns, sqs = aws.client("sns"), aws.client("sqs")
    topic = sns.create_topic(Name="filtered")["TopicArn"]
    queue = subscribe(sns, sqs, topic, address)
    notifier = SnsNotifier(sns, topic)

    # When the remediator e-mails about 'orders' and about 'payments', each to its policy's notify.emails
    notifier.send("orders", "about orders", "body", ORDERS)
    notifier.send("payments", "about payments", "body", PAYMENTS)

    # Then the address receives the messages that name it, and no other
    assert subjects(sqs, queue) == expected


def test_a_message_to_nobody_reaches_no_filtered_subscription(aws: Any) -> None:
    # Given an address subscribed with its filter
    sns, sqs = aws.client("sns"), aws.client("sqs")
    topic = sns.create_topic(Name="filtered")["TopicArn"]
    queue = subscribe(sns, sqs, topic, "oncall@example.com")

    # When a stream whose policy names no address is reported
    SnsNotifier(sns, topic).send("quiet", "about quiet", "body", [])

    # Then nobody gets it
    assert subjects(sqs, queue) == []


def test_the_recipients_attribute_is_a_lower_cased_sorted_string_array(aws: Any) -> None:
    # Given an unfiltered subscriber (it sees every attribute)
    sns, sqs = aws.client("sns"), aws.client("sqs")
    topic = sns.create_topic(Name="open")["TopicArn"]
    queue = sqs.create_queue(QueueName="open")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)

    # When a message goes to a list with mixed case and a duplicate
    SnsNotifier(sns, topic).send("orders", "s", "b", ["B@Example.com", "a@example.com", "b@example.com"])

    # Then it carries the stream and the recipients, lower-cased, sorted, once each
    (message,) = sqs.receive_message(QueueUrl=queue).get("Messages", [])
    assert json.loads(message["Body"])["MessageAttributes"] == {
        "stream": {"Type": "String", "Value": "orders"},
        "recipients": {"Type": "String.Array", "Value": '["a@example.com", "b@example.com"]'},
    }
