from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

# The message attribute each e-mail subscription filters on (stacks/constructs/notifications.py).
RECIPIENTS_ATTRIBUTE = "recipients"


def recipients_value(recipients: Sequence[str]) -> str:
    """The String.Array value: the addresses lower-cased, sorted, once each, as a JSON array."""
    return json.dumps(sorted({address.lower() for address in recipients}))


class SnsNotifier:
    """Publishes to the notifications topic. The message names its recipients in the String.Array attribute
    `recipients`, and each address's e-mail subscription accepts the messages that name it; `stream` is kept for
    anyone reading the topic otherwise."""

    def __init__(self, sns: Any, topic_arn: str) -> None:
        self._sns = sns
        self._topic_arn = topic_arn

    def send(self, stream: str, subject: str, body: str, recipients: Sequence[str]) -> str:
        attributes: dict[str, dict[str, str]] = {"stream": {"DataType": "String", "StringValue": stream}}
        if recipients:
            # No attribute when nobody is named: no subscription matches, as SNS filters a missing attribute.
            attributes[RECIPIENTS_ATTRIBUTE] = {
                "DataType": "String.Array",
                "StringValue": recipients_value(recipients),
            }
        response = self._sns.publish(
            TopicArn=self._topic_arn, Subject=subject, Message=body, MessageAttributes=attributes
        )
        return str(response["MessageId"])
