"""Realistic receipt bodies, as SES → SNS → SQS delivers them, for tests and `notify bench receipts`."""

from __future__ import annotations

import json
import uuid
from typing import Any


def sns_envelope(message: dict[str, Any], topic: str = "notify-ses-bounces") -> str:
    """Wrap an event the way a standard SNS→SQS subscription does."""
    return json.dumps(
        {
            "Type": "Notification",
            "MessageId": str(uuid.uuid4()),
            "TopicArn": f"arn:aws:sns:eu-west-2:123456789012:{topic}",
            "Message": json.dumps(message),
            "Timestamp": "2026-11-23T12:00:01.000Z",
            "SignatureVersion": "1",
            "Signature": "EXAMPLE==",
            "SigningCertURL": "https://sns.eu-west-2.amazonaws.com/SimpleNotificationService-abc.pem",
            "UnsubscribeURL": "https://sns.eu-west-2.amazonaws.com/?Action=Unsubscribe",
        }
    )


def ses_mail(message_id: str) -> dict[str, Any]:
    """Return the `mail` object SES puts in every event; `messageId` is the notification's reference."""
    return {
        "timestamp": "2026-11-23T12:00:00.000Z",
        "source": "sample@notify.test",
        "sourceArn": "arn:aws:ses:eu-west-2:123456789012:identity/notify.test",
        "sendingAccountId": "123456789012",
        "messageId": message_id,
        "destination": ["ada@example.com"],
        "headersTruncated": False,
        "tags": {"ses:configuration-set": ["notify"]},
    }


def delivery_event(message_id: str) -> dict[str, Any]:
    """Return a realistic SES configuration-set Delivery event."""
    return {
        "eventType": "Delivery",
        "mail": ses_mail(message_id),
        "delivery": {
            "timestamp": "2026-11-23T12:00:01.000Z",
            "processingTimeMillis": 546,
            "recipients": ["ada@example.com"],
            "smtpResponse": "250 ok:  Message 64111812 accepted",
            "reportingMTA": "a8-70.smtp-out.amazonses.com",
        },
    }
