from __future__ import annotations

from typing import Any


class SnsNotifier:
    """Publishes to the notifications topic; each e-mail subscription filters on the `stream` attribute."""

    def __init__(self, sns: Any, topic_arn: str) -> None:
        self._sns = sns
        self._topic_arn = topic_arn

    def send(self, stream: str, subject: str, body: str) -> str:
        response = self._sns.publish(
            TopicArn=self._topic_arn,
            Subject=subject,
            Message=body,
            MessageAttributes={"stream": {"DataType": "String", "StringValue": stream}},
        )
        return str(response["MessageId"])
