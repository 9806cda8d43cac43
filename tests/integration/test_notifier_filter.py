"""The notifier's `stream` message attribute meets the e-mail subscriptions' filter (as synthesized: FilterPolicy on
`stream`, FilterPolicyScope MessageAttributes): each address gets its streams' messages and no other."""

from __future__ import annotations

import json

from remediator.clients.notifier import SnsNotifier


def test_a_subscription_filtered_on_its_streams_gets_exactly_their_messages(aws):
    # Given a topic with a subscriber filtered, as the stack filters e-mail subscriptions, to stream 'orders'
    sns, sqs = aws.client("sns"), aws.client("sqs")
    topic = sns.create_topic(Name="filtered")["TopicArn"]
    queue = sqs.create_queue(QueueName="orders-team")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(
        TopicArn=topic,
        Protocol="sqs",
        Endpoint=queue_arn,
        Attributes={
            "FilterPolicy": json.dumps({"stream": ["orders"]}),
            "FilterPolicyScope": "MessageAttributes",
        },
    )
    notifier = SnsNotifier(sns, topic)

    # When the remediator e-mails about 'orders' and about 'payments'
    notifier.send("orders", "about orders", "body")
    notifier.send("payments", "about payments", "body")

    # Then the subscriber receives the message about its stream only
    messages = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages", [])
    assert [json.loads(m["Body"])["Subject"] for m in messages] == ["about orders"]
